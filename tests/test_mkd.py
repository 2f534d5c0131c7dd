"""MKD: its loss and detection score against hand loops, the cloner's layout and taps,
guided backpropagation's ReLU, the saliency post-processing against numpy, its maps, λ per
dataset, resume."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from multiad.backbones import build_backbone
from multiad.config import RunConfig
from multiad.methods.mkd.loss import mkd_loss, per_image_loss
from multiad.methods.mkd.saliency import GuidedReLU, grayscale, minmax
from multiad.methods.mkd.torch_model import Cloner, MKDModel
from multiad.torch_files import load_torch


def _pairs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    shapes = [(3, 4, 4, 4), (3, 6, 2, 2)]
    return ([torch.randn(s, generator=g) for s in shapes],
            [torch.randn(s, generator=g) for s in shapes])


def test_mkd_loss_equals_a_hand_loop():
    s, t = _pairs()
    lam = 0.5
    direction, value, per_image = 0.0, 0.0, [0.0, 0.0, 0.0]
    for fs, ft in zip(s, t, strict=True):
        n = len(fs)
        for b in range(n):
            a, c = fs[b].flatten().double(), ft[b].flatten().double()
            d = 1 - float(a @ c / (a.norm() * c.norm()))  # one cosine per image (Eq. 2)
            v = float(((a - c) ** 2).mean())
            direction += d / n
            value += v / n
            per_image[b] += d + lam * v
    loss, l_dir, l_val = mkd_loss(s, t, lam)
    assert math.isclose(float(l_dir), direction, rel_tol=1e-5)
    assert math.isclose(float(l_val), value, rel_tol=1e-5)
    assert math.isclose(float(loss), direction + lam * value, rel_tol=1e-5)
    got = per_image_loss(s, t, lam)
    torch.testing.assert_close(got.double(), torch.tensor(per_image, dtype=torch.float64),
                               rtol=1e-5, atol=1e-6)
    # the batch loss is the mean of the images' own losses
    assert math.isclose(float(got.mean()), float(loss), rel_tol=1e-5)


def test_cloner_follows_configuration_b_and_lines_up_with_vgg16():
    teacher = build_backbone("vgg16", "random")
    net = Cloner(tuple(teacher.feature_info.channels), 16)
    widths = [[m.out_channels for m in b if isinstance(m, torch.nn.Conv2d)]
              for b in net.blocks]
    assert widths == [[16, 16], [16, 128], [16, 16, 256], [16, 16, 512], [16, 16, 512]]
    for block in net.blocks:
        convs = [i for i, m in enumerate(block) if isinstance(m, torch.nn.Conv2d)]
        assert all(block[i].bias is None for i in convs)
        # batch norm after every convolution but the block's last (which feeds the pool)
        assert [isinstance(block[i + 1], torch.nn.BatchNorm2d) for i in convs] == \
            [True] * (len(convs) - 1) + [False]
        assert isinstance(block[-1], torch.nn.MaxPool2d)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert [f.shape for f in net(x)] == [f.shape for f in teacher(x)]


def test_cloner_lines_up_with_the_offline_backbone():
    teacher = build_backbone("efficientnet_lite0", "imagenet")
    net = Cloner(tuple(teacher.feature_info.channels), 16)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert [f.shape for f in net(x)] == [f.shape for f in teacher(x)]


def test_guided_relu_passes_back_only_positive_gradients_where_it_fired():
    x = torch.tensor([-1.0, 2.0, 3.0, -0.5], requires_grad=True)
    relu = GuidedReLU()
    grad_out = torch.tensor([5.0, -2.0, 1.5, 4.0])
    relu.guided = True
    (g,) = torch.autograd.grad(relu(x), x, grad_out)
    assert g.tolist() == [0.0, 0.0, 1.5, 0.0]
    relu.guided = False  # an ordinary ReLU
    (g,) = torch.autograd.grad(relu(x), x, grad_out)
    assert g.tolist() == [0.0, -2.0, 1.5, 0.0]


def test_saliency_post_processing_matches_numpy():
    g = torch.randn(2, 3, 9, 7, generator=torch.Generator().manual_seed(1))
    v = np.abs(g.numpy()).sum(axis=1)
    want = []
    for img in v:
        lo, hi = img.min(), np.percentile(img, 99)
        want.append(np.clip((img - lo) / (hi - lo), 0, 1))
    got = grayscale(g)
    np.testing.assert_allclose(got.numpy(), np.stack(want), rtol=1e-5, atol=1e-6)
    m = minmax(got)
    assert float(m.amin()) == 0.0 and float(m.flatten(1).amax(1).min()) == pytest.approx(1.0)


def _model(offline_config, *extra: str) -> MKDModel:
    cfg = offline_config("mkd", *extra).validate()
    return MKDModel(cfg, build_backbone(cfg.teacher.backbone, cfg.teacher.weights)).eval()


def test_score_is_the_loss_at_the_score_taps_and_maps_are_per_image(offline_config):
    model = _model(offline_config)
    x = torch.randn(3, 3, 64, 64)
    out = model.predict(x)
    inp = model.net_input(x)
    with torch.no_grad():
        s, t = model.student(inp), model.teacher(inp)
    want = per_image_loss(s[1:], t[1:], 0.01)  # taps 2–4, λ 0.01 off MVTec AD
    torch.testing.assert_close(out.score, want)
    assert out.fused.shape == (3, 64, 64) and out.layer_maps[0].shape == (3, 1, 64, 64)
    # an image's gradient map does not depend on the others in its batch (BN in eval mode)
    alone = model.predict(x[1:2])
    torch.testing.assert_close(alone.fused[0], out.fused[1], rtol=1e-4, atol=1e-5)
    assert float(out.fused.amin()) >= 0 and float(out.fused.amax()) <= 1  # gbp: min–max


def test_guided_backpropagation_equals_the_references_relu_hooks(offline_config):
    """Guided backpropagation done as the reference does it — hooks on the student's ReLUs
    that clamp their input gradients at zero — gives the same map; vanilla differs."""
    from multiad.methods.mkd.saliency import GuidedReLU

    model = _model(offline_config)  # mkd.localization = gbp
    x = torch.randn(1, 3, 32, 32)
    got = model.saliency(model.net_input(x))[1]
    hooks = [m.register_full_backward_hook(lambda mod, gi, go: (gi[0].clamp(min=0),))
             for m in model.student.modules() if isinstance(m, GuidedReLU)]
    try:
        inp = model.net_input(x).requires_grad_(True)
        s, t = model.student(inp), model.teacher(inp)
        (g,) = torch.autograd.grad(per_image_loss(s[1:], t[1:], 0.01).sum(), inp)
    finally:
        for h in hooks:
            h.remove()
    torch.testing.assert_close(got, minmax(grayscale(g)), rtol=1e-4, atol=1e-5)
    vanilla = _model(offline_config, "mkd.localization=gradients")
    vanilla.student.load_state_dict(model.student.state_dict())
    assert not torch.allclose(vanilla.saliency(vanilla.net_input(x))[1], got, atol=1e-3)


def test_vanilla_gradients_are_the_gradient_of_the_images_loss(offline_config):
    model = _model(offline_config, "mkd.localization=gradients")
    x = torch.randn(1, 3, 32, 32)
    inp = model.net_input(x).requires_grad_(True)
    s, t = model.student(inp), model.teacher(inp)
    (g,) = torch.autograd.grad(per_image_loss(s[1:], t[1:], 0.01).sum(), inp)
    torch.testing.assert_close(model.saliency(model.net_input(x))[1], grayscale(g))


def test_feature_map_interpretation_sums_per_position_cosine_distances(offline_config):
    model = _model(offline_config, "mkd.localization=features")
    x = torch.randn(2, 3, 64, 64)
    out = model.predict(x)
    inp = model.net_input(x)
    with torch.no_grad():
        s, t = model.student(inp), model.teacher(inp)
    want = torch.zeros(2, 64, 64)
    for fs, ft in zip(s[1:], t[1:], strict=True):  # taps 2–4
        cos = (fs * ft).sum(1) / (fs.norm(dim=1) * ft.norm(dim=1))  # per position
        want += torch.nn.functional.interpolate((1 - cos)[:, None], size=(64, 64),
                                                mode="bilinear", align_corners=False)[:, 0]
    torch.testing.assert_close(out.fused, want, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out.layer_maps[0][:, 0], out.fused)
    assert out.fused.shape == (2, 64, 64)


def test_lambda_follows_the_dataset_and_the_input_is_unnormalised():
    mv = RunConfig().with_overrides(["method=mkd", "data.kind=mvtec"]).validate()
    other = RunConfig().with_overrides(["method=mkd", "data.kind=synthetic"]).validate()
    fixed = RunConfig().with_overrides(["method=mkd", "mkd.lamda=0.2"]).validate()
    assert (mv.mkd.lamda, other.mkd.lamda, fixed.mkd.lamda) == (0.5, 0.01, 0.2)
    assert (mv.train.epochs, mv.train.batch_size, mv.train.lr, mv.teacher.backbone) == (
        601, 64, 1e-3, "vgg16")
    with pytest.raises(ValueError, match="mkd.localization"):
        RunConfig().with_overrides(["method=mkd", "mkd.localization=cam"]).validate()
    teacher = build_backbone("vgg16", "random")
    model = MKDModel(mv, teacher)
    img = torch.rand(1, 3, 8, 8)
    x = (img - torch.tensor(teacher.mean).view(1, 3, 1, 1)) / torch.tensor(
        teacher.std).view(1, 3, 1, 1)
    torch.testing.assert_close(model.net_input(x), img)  # the reference feeds [0, 1] images


def test_mkd_resume_equals_an_uninterrupted_run(offline_config, tmp_path):
    from multiad.train import load_trained, train

    cfg = offline_config("mkd", "train.batch_size=4", "train.epochs=2")
    train(cfg, tmp_path / "full", progress=False)
    train(cfg.with_overrides(["train.epochs=1", "train.keep_checkpoint=true"]),
          tmp_path / "split", progress=False)
    train(cfg, tmp_path / "split", progress=False)
    a = load_torch(tmp_path / "full" / "model.pt")
    b = load_torch(tmp_path / "split" / "model.pt")
    for name, v in a["student"].items():
        torch.testing.assert_close(v, b["student"][name], rtol=0, atol=0)
    model, back, meta = load_trained(tmp_path / "full")
    assert back.method == "mkd" and len(meta["losses"]) == 2
    assert model.predict(torch.randn(2, 3, 64, 64)).smoothed.shape == (2, 64, 64)
