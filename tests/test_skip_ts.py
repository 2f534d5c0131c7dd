"""Skip-TS: its losses against hand loops (Eq. 2–3, Eq. 4, the reference code's MAC), its
decoder's shapes and skip connections, the reference schedule, resume."""

from __future__ import annotations

import math

import pytest
import torch

from multiad.backbones import build_backbone
from multiad.config import RunConfig
from multiad.methods.rd4ad.loss import rd4ad_loss
from multiad.methods.skip_ts.loss import (
    drkd_loss,
    mac_loss_maps,
    mac_loss_mse_gaps,
    similarity_loss,
)
from multiad.methods.skip_ts.torch_model import SkipTSModel


def _stages(seed: int = 0, n: int = 2, c: tuple[int, ...] = (3, 4, 5)):
    """Teacher and student features of three stages at 8×8, 4×4, 2×2 (shallow to deep)."""
    g = torch.Generator().manual_seed(seed)
    shapes = [(n, c[0], 8, 8), (n, c[1], 4, 4), (n, c[2], 2, 2)]
    return ([torch.randn(s, generator=g) for s in shapes],
            [torch.randn(s, generator=g) for s in shapes])


def _cos_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    return 1 - float(a @ b / (a.norm() * b.norm()))


def _hand_maps(t, s):
    """Eq. 1 by loops: M_l[b, i, j] = 1 − cos(t[b, :, i, j], s[b, :, i, j])."""
    maps = []
    for ft, fs in zip(t, s, strict=True):
        n, _, h, w = ft.shape
        m = torch.zeros(n, h, w, dtype=torch.float64)
        for b in range(n):
            for i in range(h):
                for j in range(w):
                    m[b, i, j] = _cos_distance(ft[b, :, i, j].double(), fs[b, :, i, j].double())
        maps.append(m)
    return maps


def _bilinear(m: torch.Tensor, size: int, align_corners: bool) -> torch.Tensor:
    """Bilinear upsampling of N×h×w (square) by the textbook formula, no torch kernel."""
    n, h, _ = m.shape
    out = torch.zeros(n, size, size, dtype=torch.float64)
    for i in range(size):
        for j in range(size):
            if align_corners:
                y, x = i * (h - 1) / (size - 1), j * (h - 1) / (size - 1)
            else:
                y = max((i + 0.5) * h / size - 0.5, 0.0)
                x = max((j + 0.5) * h / size - 0.5, 0.0)
            y0, x0 = min(int(math.floor(y)), h - 1), min(int(math.floor(x)), h - 1)
            y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, h - 1)
            dy, dx = y - y0, x - x0
            out[:, i, j] = ((1 - dy) * (1 - dx) * m[:, y0, x0] + (1 - dy) * dx * m[:, y0, x1]
                            + dy * (1 - dx) * m[:, y1, x0] + dy * dx * m[:, y1, x1])
    return out


def test_position_similarity_is_eqs_2_3_and_flattened_is_the_codes():
    t, s = _stages()
    want = sum(float(m.mean()) for m in _hand_maps(t, s))  # Eq. 2 per stage, Eq. 3 summed
    assert math.isclose(float(similarity_loss(t, s, "position")), want, rel_tol=1e-5)
    flat = 0.0
    for ft, fs in zip(t, s, strict=True):
        flat += sum(_cos_distance(ft[b].flatten(), fs[b].flatten()) for b in range(len(ft))) \
            / len(ft)
    assert math.isclose(float(similarity_loss(t, s, "flattened")), flat, rel_tol=1e-5)
    torch.testing.assert_close(similarity_loss(t, s, "flattened"), rd4ad_loss(t, s))
    with pytest.raises(ValueError, match="unknown"):
        similarity_loss(t, s, "l2")


def test_mac_of_the_maps_is_eq_4_over_each_stage_pair_once():
    t, s = _stages(1)
    up = [_bilinear(m, 8, align_corners=False) for m in _hand_maps(t, s)]
    want = 0.0
    for i in range(3):
        for j in range(i + 1, 3):  # the pairs (1,2), (1,3), (2,3)
            d = (up[i] - up[j]) ** 2
            want += float(d.sum()) / (8 * 8 * len(d))  # Eq. 4 per image, batch mean
    assert math.isclose(float(mac_loss_maps(t, s)), want, rel_tol=1e-5)


def test_mac_of_the_code_compares_mse_across_scales():
    t, s = _stages(2)

    def mse(a, b):
        return float(((a.double() - b.double()) ** 2).sum()) / a.numel()

    def up(x, size):  # per channel, through the hand formula
        n, c = x.shape[:2]
        return _bilinear(x.reshape(n * c, *x.shape[2:]).double(), size, True).reshape(
            n, c, size, size)

    t32, s32 = up(t[2], 4), up(s[2], 4)
    e1, e2 = mse(t[0], s[0]), mse(t[1], s[1])
    want = (abs(mse(t32, s32) - e2) + abs(mse(up(t[1], 8), up(s[1], 8)) - e1)
            + abs(mse(up(t32, 8), up(s32, 8)) - e1))
    assert math.isclose(float(mac_loss_mse_gaps(t, s)), want, rel_tol=1e-5)
    # a student equal to its teacher has no gap at any scale
    assert float(mac_loss_mse_gaps(t, t)) == 0.0


@pytest.mark.parametrize("mac", ["mse_gaps", "maps", "none"])
def test_drkd_loss_is_eq_5(mac):
    t, s = _stages(3)
    total, sim, consistency = drkd_loss(t, s, alpha=0.7, beta=0.3, similarity="position",
                                        mac=mac)
    want_mac = {"mse_gaps": mac_loss_mse_gaps, "maps": mac_loss_maps}.get(mac)
    want_mac = float(want_mac(t, s)) if want_mac else 0.0
    assert math.isclose(float(consistency), want_mac, rel_tol=1e-6, abs_tol=1e-12)
    assert math.isclose(float(sim), float(similarity_loss(t, s, "position")), rel_tol=1e-6)
    assert math.isclose(float(total), 0.7 * float(sim) + 0.3 * want_mac, rel_tol=1e-6)
    with pytest.raises(ValueError, match="three stages"):
        drkd_loss(t[:2], s[:2])


@pytest.mark.parametrize("backbone,weights", [("wide_resnet50_2", "random"),
                                              ("efficientnet_lite0", "imagenet")])
def test_the_decoder_is_symmetric_to_the_teacher_and_fed_from_its_last_stage(backbone, weights):
    cfg = RunConfig().with_overrides(["method=skip_ts", f"teacher.backbone={backbone}",
                                      f"teacher.weights={weights}"]).validate()
    model = SkipTSModel(cfg, build_backbone(backbone, weights)).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        feats = model.teacher(x)
        dec = model.reconstruct(feats)
    assert [d.shape for d in dec] == [f.shape for f in feats[:3]]
    # no bottleneck: the first decoder stage takes the teacher's fourth stage as it is
    first = model.decoder.stages[0][0].body[0]
    assert first.in_channels == feats[3].shape[1]
    assert [len(st) for st in model.decoder.stages] == [3, 4, 6]


def test_skip_connections_feed_the_teachers_features_to_the_next_stage(offline_config):
    torch.manual_seed(0)
    cfg = offline_config("skip_ts").validate()
    model = SkipTSModel(cfg, build_backbone("efficientnet_lite0", "imagenet")).eval()
    feats = [f.detach() for f in model.teacher(torch.randn(1, 3, 64, 64))]
    changed = [*feats[:2], feats[2] + 1.0, feats[3]]  # F_t^3 only
    with torch.no_grad():
        a, b = model.reconstruct(feats), model.reconstruct(changed)
        # F_s^3 comes from F_t^4 alone; F_s^2 and F_s^1 see F_t^3 through the skip
        torch.testing.assert_close(a[2], b[2])
        assert not torch.allclose(a[1], b[1]) and not torch.allclose(a[0], b[0])
        # by hand: D2 decodes F_t^3 + F_s^3
        torch.testing.assert_close(a[1], model.decoder.stages[1](feats[2] + a[2]))
        no_skip = SkipTSModel(cfg.with_overrides(["skip_ts.skip=false"]).validate(),
                              model.teacher).eval()
        no_skip.decoder.load_state_dict(model.decoder.state_dict())
        c, d = no_skip.reconstruct(feats), no_skip.reconstruct(changed)
        torch.testing.assert_close(c[0], d[0])  # without skips F_t^3 is never read
        torch.testing.assert_close(c[1], no_skip.decoder.stages[1](c[2]))


def test_reference_schedule_and_checked_settings():
    c = RunConfig().with_overrides(["method=skip_ts"]).validate()
    assert (c.train.epochs, c.train.batch_size, c.train.lr, c.train.betas,
            c.teacher.backbone) == (200, 16, 0.005, (0.5, 0.999), "wide_resnet50_2")
    assert (c.skip_ts.alpha, c.skip_ts.beta, c.skip_ts.sigma) == (1.0, 0.05, 4.0)
    for bad in ("skip_ts.mac=pairs", "skip_ts.similarity=l2", "skip_ts.decoder_blocks=[3,4]"):
        with pytest.raises(ValueError, match="skip_ts"):
            RunConfig().with_overrides(["method=skip_ts", bad]).validate()


def test_skip_ts_resume_equals_an_uninterrupted_run(offline_config,
                                                    resumed_equals_uninterrupted):
    cfg = offline_config("skip_ts", "train.batch_size=4", "train.epochs=2")
    model, back, meta = resumed_equals_uninterrupted(cfg)
    assert back.method == "skip_ts" and len(meta["losses"]) == 2
    assert set(meta["losses"][0]) >= {"loss", "sim", "mac"}
    out = model.predict(torch.randn(2, 3, 64, 64))
    assert len(out.layer_maps) == 3 and out.smoothed.shape == (2, 64, 64)
    torch.testing.assert_close(out.score, out.smoothed.flatten(1).amax(1))
