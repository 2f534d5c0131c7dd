"""STFPM's and RD4AD's losses and maps against hand loops; their networks' shapes; resume
and determinism of a trained baseline through the shared engine."""

from __future__ import annotations

import math

import pytest
import torch

from multiad.backbones import build_backbone
from multiad.config import RunConfig
from multiad.methods.rd4ad.anomaly_map import layer_maps as rd_maps
from multiad.methods.rd4ad.anomaly_map import summed_map
from multiad.methods.rd4ad.loss import rd4ad_loss
from multiad.methods.rd4ad.torch_model import RD4ADModel
from multiad.methods.stfpm.anomaly_map import layer_maps as st_maps
from multiad.methods.stfpm.anomaly_map import product_map
from multiad.methods.stfpm.loss import stfpm_loss
from multiad.torch_files import load_torch


def _pairs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    shapes = [(2, 3, 4, 4), (2, 5, 2, 2)]
    return ([torch.randn(s, generator=g) for s in shapes],
            [torch.randn(s, generator=g) for s in shapes])


def test_stfpm_loss_and_map_equal_hand_loops():
    t, s = _pairs()
    loss, maps = 0.0, []
    for ft, fs in zip(t, s, strict=True):
        n, _, h, w = ft.shape
        layer, m = 0.0, torch.zeros(n, 1, h, w)
        for b in range(n):
            for i in range(h):
                for j in range(w):
                    a, c = ft[b, :, i, j], fs[b, :, i, j]
                    d = float(((a / a.norm() - c / c.norm()) ** 2).sum())
                    layer += d / (n * h * w)
                    m[b, 0, i, j] = 0.5 * d
        loss += layer
        maps.append(m)
    assert math.isclose(float(stfpm_loss(t, s)), loss, rel_tol=1e-5)
    for got, want in zip(st_maps(t, s), maps, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    up = [torch.nn.functional.interpolate(m, size=(8, 8), mode="bilinear",
                                          align_corners=False)[:, 0] for m in maps]
    torch.testing.assert_close(product_map(st_maps(t, s), (8, 8)), up[0] * up[1])


def test_rd4ad_loss_flattens_each_image_and_the_map_is_per_position():
    e, d = _pairs(1)
    loss = 0.0
    for fe, fd in zip(e, d, strict=True):
        for b in range(len(fe)):
            a, c = fe[b].flatten(), fd[b].flatten()
            loss += (1 - float(a @ c / (a.norm() * c.norm()))) / len(fe)
    assert math.isclose(float(rd4ad_loss(e, d)), loss, rel_tol=1e-5)
    maps = rd_maps(e, d)
    a, c = e[0][1, :, 2, 3], d[0][1, :, 2, 3]
    assert float(maps[0][1, 0, 2, 3]) == pytest.approx(1 - float(a @ c / (a.norm() * c.norm())),
                                                       rel=1e-5)
    assert summed_map(maps, (8, 8)).shape == (2, 8, 8)


@pytest.mark.parametrize("backbone,weights", [("wide_resnet50_2", "random"),
                                              ("efficientnet_lite0", "imagenet")])
def test_rd4ad_decoder_reconstructs_the_encoders_shapes(backbone, weights):
    cfg = RunConfig().with_overrides(["method=rd4ad", f"teacher.backbone={backbone}",
                                      f"teacher.weights={weights}"]).validate()
    model = RD4ADModel(cfg, build_backbone(backbone, weights))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        enc = model.pick(model.teacher(x))
        dec = model.reconstruct(enc)
    assert [t.shape for t in dec] == [t.shape for t in enc]
    # the OCBE encodes into twice the deepest stage's channels, at half its grid
    emb = model.ocbe(enc)
    assert emb.shape[1] == 2 * enc[-1].shape[1] and emb.shape[-1] == enc[-1].shape[-1] // 2
    # the reference's decoder: three stages of 3, 4 and 6 bottlenecks, each opening with a
    # stride-2 transposed convolution
    assert [len(s) for s in model.decoder.stages] == [3, 4, 6]
    for s in model.decoder.stages:
        mid = s[0].body[3]
        assert isinstance(mid, torch.nn.ConvTranspose2d) and mid.stride == (2, 2)


@pytest.mark.parametrize("method", ["stfpm", "rd4ad"])
def test_baseline_resume_equals_an_uninterrupted_run(method, offline_config, tmp_path):
    from multiad.train import load_trained, train

    cfg = offline_config(method, "train.batch_size=4", "train.epochs=2")
    train(cfg, tmp_path / "full", progress=False)
    train(cfg.with_overrides(["train.epochs=1", "train.keep_checkpoint=true"]),
          tmp_path / "split", progress=False)
    train(cfg, tmp_path / "split", progress=False)  # resumes after epoch 1
    a = load_torch(tmp_path / "full" / "model.pt")
    b = load_torch(tmp_path / "split" / "model.pt")
    keys = [k for k in a if k != "meta"]
    for k in keys:
        for name, v in a[k].items():
            torch.testing.assert_close(v, b[k][name], rtol=0, atol=0)
    model, back, meta = load_trained(tmp_path / "full")
    assert back.method == method and len(meta["losses"]) == 2
    out = model.predict(torch.randn(2, 3, 64, 64))
    assert len(out.layer_maps) == 3 and out.smoothed.shape == (2, 64, 64)
    torch.testing.assert_close(out.score, out.smoothed.flatten(1).amax(1))


def test_the_reference_schedules_are_each_methods_own():
    for method, want in (("stfpm", (100, 32, 0.4, "resnet18")),
                         ("rd4ad", (200, 16, 0.005, "wide_resnet50_2")),
                         ("multiad", (250, 16, 1e-3, "wide_resnet50_2"))):
        c = RunConfig().with_overrides([f"method={method}"]).validate()
        assert (c.train.epochs, c.train.batch_size, c.train.lr, c.teacher.backbone) == want
    c = RunConfig().with_overrides(["method=rd4ad"]).validate()
    assert c.train.betas == (0.5, 0.999)  # RD4AD's Adam (anomalib uses 0.99)
