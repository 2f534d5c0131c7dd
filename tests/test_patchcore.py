"""PatchCore's key computations against brute force: the coreset's greedy property, the
nearest-neighbour search, the patch features; and its run end to end."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from multiad.methods.patchcore.anomaly_map import image_score
from multiad.methods.patchcore.nn_search import nearest_distances
from multiad.methods.patchcore.sampler import greedy_coreset, project
from multiad.methods.patchcore.torch_model import neighbourhoods, patch_features


def test_every_coreset_point_is_the_farthest_at_its_turn():
    """In the projected space: the first pick has the largest mean distance to the random
    starting points; each later one the largest distance to (anchors ∪ picks so far)."""
    torch.manual_seed(0)
    feats = torch.randn(300, 40)
    chosen = greedy_coreset(feats, 0.1, 16, 10, seed=3, progress=False).tolist()
    assert len(chosen) == 30 and len(set(chosen)) == 30
    g = torch.Generator().manual_seed(3)
    red = project(feats, 16, g).double()
    starts = torch.randperm(300, generator=g)[:10]
    dist = torch.cdist(red, red)
    nearest = dist[:, starts].mean(1)
    for pick in chosen:
        assert nearest[pick] >= nearest.max() - 1e-6
        nearest = torch.minimum(nearest, dist[:, pick])


def test_nearest_distances_equal_brute_force():
    torch.manual_seed(0)
    q, bank = torch.randn(57, 9), torch.randn(23, 9)
    brute = ((q[:, None] - bank[None]) ** 2).sum(-1)
    torch.testing.assert_close(nearest_distances(q, bank, k=1, chunk=10),
                               brute.min(1).values, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(nearest_distances(q, bank, k=3, chunk=7),
                               brute.sort(1).values[:, :3].mean(1), rtol=1e-4, atol=1e-5)


def test_neighbourhoods_are_zero_padded_3x3_windows():
    torch.manual_seed(0)
    f = torch.randn(1, 2, 4, 5)
    nb = neighbourhoods(f, 3)
    padded = F.pad(f, (1, 1, 1, 1))
    for i in range(4):
        for j in range(5):
            torch.testing.assert_close(nb[0, i, j], padded[0, :, i:i + 3, j:j + 3])


def test_patch_features_pool_each_layer_then_the_layers():
    """With divisible sizes adaptive average pooling is a mean over equal chunks."""
    torch.manual_seed(0)
    l2, l3 = torch.randn(1, 4, 4, 4), torch.randn(1, 8, 2, 2)
    out, grid = patch_features([None, l2, l3], (2, 3), 3, pretrain_dim=12, target_dim=6)
    assert grid == (4, 4) and out.shape == (16, 6)
    nb2 = neighbourhoods(l2, 3).reshape(16, -1)  # 36 values → 12 means of 3
    up = F.interpolate(neighbourhoods(l3, 3).permute(0, 3, 4, 5, 1, 2).reshape(1, 72, 2, 2),
                       size=(4, 4), mode="bilinear", align_corners=False)
    nb3 = up.reshape(1, 8, 3, 3, 4, 4).permute(0, 4, 5, 1, 2, 3).reshape(16, -1)  # 72 → 12
    pooled = torch.cat([nb2.reshape(16, 12, 3).mean(-1), nb3.reshape(16, 12, 6).mean(-1)], 1)
    torch.testing.assert_close(out, pooled.reshape(16, 6, 4).mean(-1))


def test_image_score_is_the_largest_patch_score():
    s = torch.rand(3, 1, 5, 5)
    torch.testing.assert_close(image_score(s), s.flatten(1).max(1).values)


def test_patchcore_run_bank_and_maps(offline_config, tmp_path):
    from multiad.evaluate import evaluate
    from multiad.train import load_trained, train

    cfg = offline_config("patchcore")
    train(cfg, tmp_path / "r", progress=False)
    model, _, meta = load_trained(tmp_path / "r")
    info = meta["patchcore"]
    assert info["patches"] == 10 * 8 * 8 and info["bank"] == int(info["patches"] * 0.1)
    out = model.predict(torch.randn(2, 3, 64, 64))
    assert out.layer_maps[0].shape == (2, 1, 8, 8) and out.smoothed.shape == (2, 64, 64)
    result = evaluate(tmp_path / "r", device="cpu", progress=False, max_overlays=1)
    assert 0 <= result["metrics"]["pixel_auroc"] <= 1
    assert set(np.load(tmp_path / "r" / "maps.npz")) >= {"patch_score"}
