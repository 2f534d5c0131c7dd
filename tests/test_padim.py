"""PaDiM's key computations against independent ones (numpy/scipy, the reference's own
unfold/fold embedding), and its run end to end."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.spatial.distance import mahalanobis

from multiad.methods.padim.fitter import pack, unpack
from multiad.methods.padim.torch_model import GaussianStats, channel_subset, embed


def reference_embedding_concat(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The reference's ``embedding_concat`` (an unfold/fold), written out independently."""
    b, c1, h1, w1 = x.shape
    _, c2, h2, w2 = y.shape
    s = h1 // h2
    x = F.unfold(x, kernel_size=s, dilation=1, stride=s).view(b, c1, -1, h2, w2)
    z = torch.zeros(b, c1 + c2, x.size(2), h2, w2)
    for i in range(x.size(2)):
        z[:, :, i] = torch.cat((x[:, :, i], y), 1)
    z = z.view(b, -1, h2 * w2)
    return F.fold(z, kernel_size=s, output_size=(h1, w1), stride=s)


def test_embedding_is_the_references_concatenation():
    torch.manual_seed(0)
    feats = [torch.randn(2, 3, 8, 8), torch.randn(2, 4, 4, 4), torch.randn(2, 5, 2, 2)]
    ref = reference_embedding_concat(reference_embedding_concat(feats[0], feats[1]), feats[2])
    idx = channel_subset(12, 7, 1024)
    torch.testing.assert_close(embed(feats, (1, 2, 3), idx), ref[:, idx])


def test_channel_subset_reproduces_the_reference_draw():
    random.seed(1024)  # the reference: random.seed(1024); idx = sample(range(0, t_d), d)
    expected = random.sample(range(0, 1792), 550)
    assert channel_subset(1792, 550, 1024).tolist() == expected
    assert channel_subset(176, 550, 1024).tolist() == list(range(176))  # d ≥ C: all


def test_mahalanobis_equals_a_direct_scipy_computation():
    rng = np.random.default_rng(0)
    n, d, h, w = 40, 5, 3, 2
    train = rng.normal(size=(n, d, h, w)).astype(np.float32) * 3 + 7
    test = rng.normal(size=(4, d, h, w)).astype(np.float32) * 3 + 7
    stats = GaussianStats(d, h * w, eps=0.01, chunk=4)
    for part in np.array_split(train, 3):  # batches of different sizes
        stats.update(torch.from_numpy(part))
    stats.finalise()
    got = stats.mahalanobis(torch.from_numpy(test)).numpy()[:, 0]
    for i in range(h):
        for j in range(w):
            x = train[:, :, i, j].astype(np.float64)
            cov = np.cov(x, rowvar=False) + 0.01 * np.identity(d)  # the reference's Σ
            inv = np.linalg.inv(cov)
            for k in range(len(test)):
                want = mahalanobis(test[k, :, i, j], x.mean(0), inv)
                assert got[k, i, j] == pytest.approx(want, rel=1e-4)


def test_statistics_pack_and_unpack_exactly():
    torch.manual_seed(0)
    stats = GaussianStats(4, 6)
    stats.update(torch.randn(10, 4, 2, 3))
    stats.finalise()
    back = GaussianStats(4, 6)
    unpack(back, pack(stats))
    torch.testing.assert_close(back.precision, stats.precision, rtol=0, atol=0)
    torch.testing.assert_close(back.mean, stats.mean, rtol=0, atol=0)
    x = torch.randn(3, 4, 2, 3)
    torch.testing.assert_close(back.mahalanobis(x), stats.mahalanobis(x))


def test_a_single_training_image_is_refused_clearly():
    stats = GaussianStats(2, 1)
    stats.update(torch.randn(1, 2, 1, 1))
    with pytest.raises(ValueError, match="at least 2 training images"):
        stats.finalise()


def test_padim_run_maps_and_score(offline_config, tmp_path):
    from multiad.evaluate import evaluate
    from multiad.train import load_trained, train

    cfg = offline_config("padim")
    train(cfg, tmp_path / "r", progress=False)
    model, back, meta = load_trained(tmp_path / "r")
    assert back.method == "padim" and meta["epochs"] == 0 and meta["padim"]["dims"] == 176
    out = model.predict(torch.randn(2, 3, 64, 64))
    assert out.smoothed.shape == (2, 64, 64) and out.layer_maps[0].shape == (2, 1, 16, 16)
    torch.testing.assert_close(out.score, out.smoothed.flatten(1).amax(1))
    result = evaluate(tmp_path / "r", device="cpu", progress=False, max_overlays=1)
    assert 0 <= result["metrics"]["image_auroc"] <= 1 and result["config"]["method"] == "padim"
    assert set(np.load(tmp_path / "r" / "maps.npz")) >= {"mahalanobis", "scores"}


def test_predict_scores_a_folder_with_a_fitted_method(tiny_texture_root, tmp_path):
    """A baseline's run answers ``multiad predict`` like Multi-AD's (training scores as the
    reference)."""
    from multiad.cli import main

    run = tmp_path / "r"
    assert main(["-q", "run", "--method", "padim", "--data", "synthetic", "--root",
                 str(tiny_texture_root), "--category", "texture", "--backbone",
                 "efficientnet_lite0", "--image-size", "64", "--device", "cpu",
                 "--set", f"data.cache_dir={tmp_path / 'cache'}", "--out", str(run)]) == 0
    meta = __import__("json").loads((run / "train.json").read_text())
    assert meta["train_scores"]["max"] >= meta["train_scores"]["mean"] > 0
    images = tiny_texture_root / "texture" / "test" / "hole"
    assert main(["-q", "predict", str(run), str(images), "--out", str(tmp_path / "p"),
                 "--device", "cpu"]) == 0
    assert (tmp_path / "p" / "scores.csv").read_text().count("\n") == 1 + len(
        list(images.glob("*.png")))
