"""MHKD: its losses against hand computations (Eqs. 4, 6, 7, 8, the self-distillation
term's gradients), the teacher's and the student's shapes, the quantile normalisation
(Eq. 9), the held-out validation images, the cached teacher distillation, the learning
rate drop, resume."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from multiad.data.errors import DataError
from multiad.methods.efficientad.anomaly_map import normalise, quantiles
from multiad.methods.efficientad.distill_data import image_files
from multiad.methods.efficientad.pdn import pdn_medium
from multiad.methods.efficientad.student_teacher import holdout
from multiad.methods.mhkd.anomaly_map import branch_maps
from multiad.methods.mhkd.loss import hybrid_loss
from multiad.methods.mhkd.student import MHKDStudent

TINY = ("mhkd.width=0.125", "mhkd.out_channels=16", "mhkd.distill_steps=3",
        "mhkd.distill_batch_size=2", "mhkd.distill_norm_images=2")


def _feats(seed: int = 0, shape=(2, 3, 4, 4)):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g) for _ in range(4)]


def test_hybrid_loss_is_eq_8_of_eqs_4_6_7():
    f_t, f_l, f_g, f_s = _feats()
    n, c, h, w = f_t.shape

    def frob(a, b):  # (hwc)⁻¹ Σ_c ‖a − b‖²_F per image, then the batch mean
        return sum(float(((a[i] - b[i]) ** 2).sum()) / (h * w * c) for i in range(n)) / n

    got = hybrid_loss(f_t, f_l, f_g, f_s, alpha=0.5, beta=2.0, gamma=3.0)
    want = {"L_L": frob(f_t, f_s), "L_G": frob(f_t, f_g), "L_SG": frob(f_g, f_l)}
    for k, v in want.items():
        assert math.isclose(float(got[k]), v, rel_tol=1e-6)
    assert math.isclose(float(got["loss"]),
                        0.5 * want["L_L"] + 2.0 * want["L_G"] + 3.0 * want["L_SG"], rel_tol=1e-6)


def test_self_distillation_trains_both_sencoder1_and_the_gdecoder():
    torch.manual_seed(0)
    student = MHKDStudent(64, out_channels=16, width=0.125, dropout=0.0)
    f_l, f_g, f_s = student(torch.randn(2, 3, 64, 64))
    f_t = torch.zeros_like(f_s)
    hybrid_loss(f_t, f_l, f_g, f_s, alpha=0.0, beta=0.0, gamma=1.0)["loss"].backward()
    grads = {name: p.grad for name, p in student.named_parameters()}
    # L_SG alone: SEncoder1 (through f_l, and through f_h into the GDecoder) and the
    # GDecoder learn; the LDecoder, which L_SG never reads, gets no gradient
    assert any(g is not None and g.abs().sum() > 0 for k, g in grads.items()
               if k.startswith("sencoder1"))
    assert any(g is not None and g.abs().sum() > 0 for k, g in grads.items()
               if k.startswith("gdecoder"))
    assert all(g is None or g.abs().sum() == 0 for k, g in grads.items()
               if k.startswith("ldecoder"))


def test_pdn_is_six_convolutions_two_average_pools_and_sees_33_pixels():
    pdn = pdn_medium(384)
    kinds = [type(m).__name__ for m in pdn]
    assert kinds.count("Conv2d") == 6 and kinds.count("AvgPool2d") == 2
    with torch.no_grad():
        assert pdn(torch.zeros(1, 3, 256, 256)).shape == (1, 384, 64, 64)
    # the receptive field of one output: the input pixels its gradient reaches
    small = pdn_medium(8, width=0.05).double()
    x = torch.randn(1, 3, 96, 96, dtype=torch.float64, requires_grad=True)
    y = small(x)
    y[0, :, y.shape[-2] // 2, y.shape[-1] // 2].sum().backward()
    rows = x.grad.abs().sum(dim=(0, 1, 3)).nonzero()
    assert int(rows.max() - rows.min() + 1) == 33


@pytest.mark.parametrize("size", [256, 64])
def test_student_branches_match_the_teachers_grid_and_g_compresses_to_one_vector(size):
    student = MHKDStudent(size, out_channels=32, width=0.125).eval()
    seen = {}
    def keep(module, inputs, output) -> None:
        seen["code"] = output.shape

    student.gdecoder.bottleneck.register_forward_hook(keep)
    with torch.no_grad():
        f_l, f_g, f_s = student(torch.zeros(1, 3, size, size))
        t = pdn_medium(32, 0.125)(torch.zeros(1, 3, size, size))
    assert f_l.shape == f_g.shape == f_s.shape == t.shape == (1, 32, size // 4, size // 4)
    assert seen["code"] == (1, 64, 1, 1)  # f_g′ ∈ R^{1×1×64}
    with pytest.raises(ValueError, match="one image size"):
        student(torch.zeros(1, 3, 2 * size, 2 * size))


def test_quantiles_and_eq9_normalisation():
    m = torch.rand(3, 1, 20, 20, generator=torch.Generator().manual_seed(1))
    q = quantiles(m, 0.9, 0.995)
    want = torch.quantile(m.flatten().double(), torch.tensor([0.9, 0.995], dtype=torch.float64))
    assert q == pytest.approx(want.tolist(), rel=1e-12)
    out = normalise(torch.tensor(q), q)
    assert out.tolist() == pytest.approx([0.0, 0.1])
    f_t, f_l, f_g, f_s = _feats(2)
    a_s, a_g = branch_maps(f_t, f_l, f_g, f_s)
    torch.testing.assert_close(a_s[1, 0, 2, 3], ((f_t - f_s)[1, :, 2, 3] ** 2).mean())
    torch.testing.assert_close(a_g[0, 0, 1, 0], ((f_g - f_l)[0, :, 1, 0] ** 2).mean())


def test_holdout_is_seeded_disjoint_and_complete():
    tr, va = holdout(25, 0.1, seed=3)
    assert len(va) == 2 and len(tr) == 23
    assert sorted(torch.cat([tr, va]).tolist()) == list(range(25))
    assert torch.equal(holdout(25, 0.1, seed=3)[1], va)
    assert not torch.equal(holdout(25, 0.1, seed=4)[1], va)
    assert len(holdout(3, 0.1, seed=0)[1]) == 1 and len(holdout(2, 0.9, seed=0)[0]) == 1


def test_distillation_images_bad_folders_are_named(tmp_path):
    assert len(image_files(None)) == 16  # the photographs bundled with scikit-image
    with pytest.raises(DataError, match="not a folder"):
        image_files(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="holds no image files"):
        image_files(tmp_path)


def test_draws_are_the_same_with_any_number_of_decoding_workers(tmp_path):
    """Each batch is seeded by its index: worker processes decoding ahead give the batches
    of the loop itself, bit for bit, and a folder of photographs is read from disk."""
    import shutil

    from multiad.methods.efficientad.distill_data import PairBatches, batches, default_workers

    for p in image_files(None)[:5]:
        shutil.copy(p, tmp_path / p.name)
    files = image_files(tmp_path)
    assert len(files) == 5 and default_workers(5) == 0 and default_workers(10_000) >= 1
    pairs = PairBatches(files, 32, seed=3, batch_size=4)
    inline = list(batches(pairs, 2, 7, workers=0))
    ahead = list(batches(PairBatches(files, 32, seed=3, batch_size=4), 2, 7, workers=2))
    assert len(inline) == len(ahead) == 5
    for (s0, l0), (s1, l1) in zip(inline, ahead, strict=True):
        assert s0.shape == (4, 3, 32, 32) and l0.shape == (4, 3, 64, 64)
        torch.testing.assert_close(s0, s1, rtol=0, atol=0)
        torch.testing.assert_close(l0, l1, rtol=0, atol=0)
    assert not torch.equal(inline[0][0], inline[1][0])  # batches differ from each other
    torch.testing.assert_close(pairs[4][1], inline[2][1], rtol=0, atol=0)  # by index
    other = PairBatches(files, 32, seed=4, batch_size=4)[2][0]
    assert not torch.equal(other, inline[0][0])  # and from another seed's


def test_decoding_workers_do_not_make_another_run(offline_config):
    from multiad.engine.run_folder import comparable_config

    base = comparable_config(offline_config("mhkd").to_dict())
    assert comparable_config(offline_config("mhkd", "mhkd.distill_workers=3").to_dict()) == base
    assert comparable_config(offline_config("mhkd", "mhkd.distill_steps=7").to_dict()) != base
    with pytest.raises(ValueError, match="distill_workers must be ≥ 0"):
        offline_config("mhkd", "mhkd.distill_workers=-1").validate()


def test_teacher_is_distilled_once_and_reused(offline_config):
    from multiad.methods.efficientad.distill import distil

    cfg = offline_config("mhkd", *TINY).validate()
    state, meta = distil(cfg, torch.device("cpu"), progress=False)
    assert not meta["reused"] and meta["steps"] == 3 and len(meta["losses"]) >= 2
    assert "scikit-image" in meta["distilled_on"] and meta["wall_s"] > 0
    assert meta["peak_memory_mib"] > 0 and meta["source"]["backbone"] == "efficientnet_lite0"
    assert meta["decoding_workers"] == 0  # 16 photographs: decoded once, in this process
    # the same teacher when worker processes decode the draws (not part of the cache key)
    ahead = distil(cfg.with_overrides(["mhkd.distill_workers=2",
                                       f"data.cache_dir={Path(meta['cache_file']).parent}/w"]
                                      ).validate(), torch.device("cpu"), progress=False)
    assert not ahead[1]["reused"] and ahead[1]["decoding_workers"] == 2
    for k, v in state.items():
        torch.testing.assert_close(v, ahead[0][k], rtol=0, atol=0)
    again, meta2 = distil(cfg, torch.device("cpu"), progress=False)
    assert meta2["reused"] and meta2["cache_file"] == meta["cache_file"]
    for k, v in state.items():
        torch.testing.assert_close(v, again[k], rtol=0, atol=0)
    other = distil(cfg.with_overrides(["mhkd.distill_steps=2"]).validate(),
                   torch.device("cpu"), progress=False)[1]
    assert other["cache_file"] != meta["cache_file"]
    # a damaged cache file is a miss: said, distilled again, replaced
    Path(meta["cache_file"]).write_bytes(b"not a torch file")
    with pytest.warns(UserWarning, match="unreadable"):
        state3, meta3 = distil(cfg, torch.device("cpu"), progress=False)
    assert not meta3["reused"] and meta3["cache_file"] == meta["cache_file"]
    for k, v in state.items():  # the same seeded distillation
        torch.testing.assert_close(v, state3[k], rtol=0, atol=0)


def test_begin_holds_out_validation_and_normalises_the_teacher_on_the_rest(offline_config):
    from multiad.methods.mhkd.trainer import MHKDTrainer

    cfg = offline_config("mhkd", *TINY, "train.batch_size=4", "train.epochs=2").validate()
    trainer = MHKDTrainer(cfg, torch.device("cpu"))
    images = torch.randint(0, 255, (10, 3, 64, 64), dtype=torch.uint8)
    train = trainer.begin(images, progress=False)
    assert len(train) == 9 and len(trainer.validation) == 1
    assert "held out" in trainer.validation_source
    with torch.no_grad():
        t = trainer.teacher(trainer.prepare(train))[0]
    mean = t.mean(dim=(2, 3)).mean(0)
    std = ((t - mean[None, :, None, None]) ** 2).mean(dim=(2, 3)).mean(0).sqrt()
    torch.testing.assert_close(trainer.model.t_mean.flatten(), mean, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(trainer.model.t_std.flatten(), std, rtol=1e-5, atol=1e-5)
    # the learning rate drops by 10 after lr_drop_at of the steps (2 epochs × 3 batches)
    assert trainer.total_steps == 6
    lrs = []
    for i in range(6):
        trainer.step(trainer.prepare(train[(i % 3) * 4:(i % 3) * 4 + 4]))
        lrs.append(trainer.opt.param_groups[0]["lr"])
    base = cfg.train.lr
    assert lrs == pytest.approx([base] * 5 + [0.1 * base])  # step 6 ≥ ⌊0.95 · 6⌋ = 5
    # a checkpoint made against another distilled teacher is refused, by name
    state = trainer.state(1, [])
    state["teacher_sha256"] = "0" * 64
    with pytest.raises(RuntimeError, match="another distilled teacher"):
        trainer.load_state(state)
    with pytest.raises(DataError, match="at least 2"):
        trainer.begin(images[:1], progress=False)


def test_teacher_feature_caches_are_never_shared_across_methods(offline_config):
    """The engine shares T's cached features between runs of a group with equal keys:
    SimpleNet's float32 features, RD4AD's autocast ones and MHKD's PDN outputs differ."""
    from multiad.methods import get_method

    keys = {}
    for method in ("rd4ad", "skip_ts", "simplenet", "mhkd"):
        cfg = offline_config(method, *TINY).validate()
        keys[method] = get_method(method).build(cfg, torch.device("cpu")
                                                       ).teacher_cache_key()
    assert keys["rd4ad"] == keys["skip_ts"]  # same teacher, same forward: one cache
    assert len({keys["rd4ad"], keys["simplenet"], keys["mhkd"]}) == 3
    # MKD's features depend on its input setting ([0, 1] images or the teacher's norm)
    mkd = [get_method("mkd").build(offline_config("mkd", f"mkd.input={v}").validate(),
                                          torch.device("cpu")).teacher_cache_key()
           for v in ("unnormalized", "teacher")]
    assert mkd[0] != mkd[1]


def test_mhkd_resume_equals_an_uninterrupted_run_and_predicts(offline_config,
                                                             resumed_equals_uninterrupted):
    cfg = offline_config("mhkd", *TINY, "train.batch_size=4", "train.epochs=2")
    # the lr drop is placed in the planned steps: the run is interrupted, not re-planned
    # (measured: one weight of 36,000–65,000 in a layer differed between two processes by
    # 1.5e-11 to 1.5e-9, a CPU kernel's rounding; a wrong schedule on resume moves weights
    # by ~1e-4, far outside these tolerances)
    model, back, meta = resumed_equals_uninterrupted(cfg, interrupted=True, rtol=1e-4,
                                                     atol=1e-6)
    assert back.method == "mhkd" and len(meta["losses"]) == 2
    n_train = meta["data"]["counts"]["train"]["total"]
    held_out = len(holdout(n_train, 0.1, seed=0)[1])
    assert held_out >= 1 and meta["images_trained"] == n_train - held_out  # never trained on
    assert set(meta["losses"][0]) >= {"loss", "L_L", "L_G", "L_SG"}
    q = meta["quantiles"]
    assert q["structural"][0] < q["structural"][1] and "held out" in q["validation"]
    assert meta["mhkd_teacher"]["distilled_on"].startswith("the 16 photographs")
    x = torch.randn(2, 3, 64, 64)
    out = model.predict(x)
    assert [m.shape for m in out.layer_maps] == [(2, 1, 16, 16)] * 2
    # the score is the maximum of 0.5·A_s + 0.5·A_g on the teacher's grid, after Eq. 9
    a_s, a_g = model.raw_maps(x)
    want = 0.5 * normalise(a_s, q["structural"]) + 0.5 * normalise(a_g, q["logical"])
    torch.testing.assert_close(out.score, want.flatten(1).amax(1), rtol=1e-5, atol=1e-6)
    assert out.smoothed.shape == (2, 64, 64)


def test_a_dataset_with_its_own_validation_split_keeps_every_training_image(tmp_path):
    """MVTec LOCO AD has a validation folder: MHKD normalises on it and trains on all of
    ``train`` (the reference's rule for LOCO)."""
    from test_data_loco import make_loco

    from multiad.config import RunConfig
    from multiad.data import load_split
    from multiad.methods.mhkd.trainer import MHKDTrainer

    make_loco(tmp_path / "loco")
    cfg = RunConfig().with_overrides([
        "method=mhkd", "teacher.backbone=efficientnet_lite0", "teacher.weights=imagenet",
        "data.kind=mvtec_loco", f"data.root={tmp_path / 'loco'}", "data.category=pushpins",
        "data.image_size=32", f"data.cache_dir={tmp_path / 'cache'}", "train.device=cpu",
        "train.batch_size=2", "train.epochs=1", *TINY]).validate()
    _, train = load_split(cfg.data, "train", progress=False)
    trainer = MHKDTrainer(cfg, torch.device("cpu"))
    kept = trainer.begin(train.images, progress=False)
    assert len(kept) == len(train.images) == 3 and len(trainer.validation) == 2
    assert "validation split" in trainer.validation_source
