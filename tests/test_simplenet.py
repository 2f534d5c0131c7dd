"""SimpleNet: its loss against a hand loop, its networks as the reference builds them, one
training step against an independent recomputation, its maps and scores, resume."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from multiad.backbones import build_backbone
from multiad.config import RunConfig
from multiad.methods.simplenet.loss import synthetic_anomalies, truncated_l1_loss
from multiad.methods.simplenet.torch_model import Discriminator, SimpleNetModel
from multiad.torch_files import load_torch


def test_truncated_l1_loss_equals_a_hand_loop():
    g = torch.Generator().manual_seed(0)
    true_s, fake_s = torch.randn(50, generator=g), torch.randn(70, generator=g)
    t_loss = sum(max(0.0, 0.5 - float(v)) for v in true_s) / len(true_s)
    f_loss = sum(max(0.0, 0.5 + float(v)) for v in fake_s) / len(fake_s)
    got_t, got_f = truncated_l1_loss(true_s, fake_s, 0.5)
    assert math.isclose(float(got_t), t_loss, rel_tol=1e-6)
    assert math.isclose(float(got_f), f_loss, rel_tol=1e-6)
    # scores beyond the margin (normal ≥ th, anomalous ≤ −th) cost nothing
    zero_t, zero_f = truncated_l1_loss(torch.full((4,), 0.7), torch.full((4,), -0.6), 0.5)
    assert float(zero_t) == 0.0 and float(zero_f) == 0.0


def test_synthetic_anomalies_add_gaussian_noise_of_the_given_std_and_keep_gradients():
    q = torch.zeros(20000, 16, requires_grad=True)
    torch.manual_seed(0)
    fake = synthetic_anomalies(q, 0.015)
    assert float(fake.detach().std()) == pytest.approx(0.015, rel=0.02)
    assert abs(float(fake.detach().mean())) < 1e-3
    fake.sum().backward()  # not detached: the adaptor learns through the anomalous branch
    assert torch.equal(q.grad, torch.ones_like(q))


def test_discriminator_is_linear_bn_leaky_relu_linear():
    d = Discriminator(12, 8)
    lin, bn, act = d.body
    assert (lin.in_features, lin.out_features) == (12, 8) and lin.bias is not None
    assert isinstance(bn, torch.nn.BatchNorm1d) and act.negative_slope == 0.2
    assert d.tail.out_features == 1 and d.tail.bias is None
    assert d(torch.randn(5, 12)).shape == (5,)


def _model(offline_config, *extra: str) -> SimpleNetModel:
    cfg = offline_config("simplenet", "simplenet.pretrain_dim=64", "simplenet.target_dim=64",
                         "simplenet.hidden=32", *extra).validate()
    return SimpleNetModel(cfg, build_backbone(cfg.teacher.backbone, cfg.teacher.weights))


def test_prediction_is_minus_d_of_the_adapted_patch_features(offline_config):
    model = _model(offline_config).eval()
    x = torch.randn(2, 3, 64, 64)
    out = model.predict(x)
    with torch.no_grad():
        f, (h, w) = model.features(model.teacher(x))
        want = -model.discriminator(model.adaptor(f)).reshape(2, 1, h, w)
    assert (h, w) == (8, 8)  # layer 2's grid (stride 8)
    torch.testing.assert_close(out.layer_maps[0], want)
    # the image score is the maximum raw patch score, before any smoothing
    torch.testing.assert_close(out.score, want.flatten(1).amax(1))
    assert out.smoothed.shape == (2, 64, 64) and out.fused.shape == (2, 64, 64)


def test_one_step_equals_an_independent_recomputation(offline_config):
    from multiad.methods.simplenet.trainer import SimpleNetTrainer

    cfg = offline_config("simplenet", "simplenet.pretrain_dim=64", "simplenet.target_dim=64",
                         "simplenet.hidden=32", "train.batch_size=2")
    tr = SimpleNetTrainer(cfg, torch.device("cpu"))
    g0, d0 = copy.deepcopy(tr.model.adaptor), copy.deepcopy(tr.model.discriminator)
    x = torch.randn(2, 3, 64, 64)
    torch.manual_seed(5)
    got = tr.step(x)
    # by hand: the same noise, the same modules (copies), the loss of §3.5
    torch.manual_seed(5)
    with torch.no_grad():
        f, _ = tr.model.features(tr.teacher(x))
    q = g0(f)
    noise = torch.randn_like(q) * 0.015
    d0.train()
    s = d0(torch.cat([q, q + noise]))
    want = (torch.clamp(0.5 - s[:len(q)], min=0).mean()
            + torch.clamp(0.5 + s[len(q):], min=0).mean())
    assert float(got["loss"]) == pytest.approx(float(want.detach()), rel=1e-5)
    # one backward pass, then AdamW (1e-4, weight decay 0.01) on G and Adam (2e-4, weight
    # decay 1e-5) on D, by hand on the copies: the same weights as the trainer's step
    opt_g = torch.optim.AdamW(g0.parameters(), lr=1e-4, weight_decay=0.01)
    opt_d = torch.optim.Adam(d0.parameters(), lr=2e-4, weight_decay=1e-5)
    want.backward()
    assert g0.fc.weight.grad.abs().sum() > 0  # G learns (through both branches)
    opt_g.step()
    opt_d.step()
    for got_m, want_m in ((tr.model.adaptor, g0), (tr.model.discriminator, d0)):
        for a, b in zip(got_m.parameters(), want_m.parameters(), strict=True):
            torch.testing.assert_close(a, b)


def test_without_the_adaptor_the_features_go_straight_to_d(offline_config):
    from multiad.methods.simplenet.trainer import SimpleNetTrainer

    cfg = offline_config("simplenet", "simplenet.pretrain_dim=64", "simplenet.target_dim=64",
                         "simplenet.hidden=32", "simplenet.adaptor=false")
    tr = SimpleNetTrainer(cfg, torch.device("cpu"))
    assert isinstance(tr.model.adaptor, torch.nn.Identity) and tr.opt_g is None
    assert float(tr.step(torch.randn(2, 3, 64, 64))["loss"]) > 0
    assert tr.inference_state()["adaptor"] == {}


def test_reference_schedule_and_settings():
    c = RunConfig().with_overrides(["method=simplenet"]).validate()
    assert (c.train.epochs, c.train.batch_size, c.train.lr, c.teacher.backbone) == (
        160, 8, 2e-4, "wide_resnet50_2")
    p = c.simplenet
    assert (p.noise_std, p.margin, p.adaptor_lr, p.hidden, p.target_dim) == (
        0.015, 0.5, 1e-4, 1024, 1536)


def test_simplenet_resume_equals_an_uninterrupted_run(offline_config, tmp_path):
    from multiad.train import load_trained, train

    cfg = offline_config("simplenet", "train.batch_size=4", "train.epochs=2",
                         "simplenet.pretrain_dim=64", "simplenet.target_dim=64",
                         "simplenet.hidden=32")
    train(cfg, tmp_path / "full", progress=False)
    train(cfg.with_overrides(["train.epochs=1", "train.keep_checkpoint=true"]),
          tmp_path / "split", progress=False)
    train(cfg, tmp_path / "split", progress=False)  # resumes after epoch 1 (noise RNG too)
    a = load_torch(tmp_path / "full" / "model.pt")
    b = load_torch(tmp_path / "split" / "model.pt")
    for k in ("adaptor", "discriminator"):
        for name, v in a[k].items():
            torch.testing.assert_close(v, b[k][name], rtol=0, atol=0)
    model, back, meta = load_trained(tmp_path / "full")
    assert back.method == "simplenet" and len(meta["losses"]) == 2
    out = model.predict(torch.randn(2, 3, 64, 64))
    assert out.layer_maps[0].shape == (2, 1, 8, 8) and out.smoothed.shape == (2, 64, 64)
