"""AUPRO: hand-worked cases, a brute-force reference, interpolation, 8-connectivity."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from multiad.metrics import UndefinedMetricError, aupro, aupro_result, connected_regions
from multiad.metrics._inputs import as_images
from multiad.metrics.aupro import _aupro_torch


def brute_force_aupro(maps: np.ndarray, masks: np.ndarray, limit: float) -> float:
    """Loop over every distinct threshold; FPR and per-region overlap computed directly."""
    maps = np.asarray(maps, dtype=np.float64)
    masks = np.asarray(masks, dtype=bool)
    regions = []
    for i in range(masks.shape[0]):
        lab, k = ndimage.label(masks[i], structure=np.ones((3, 3)))
        regions += [(i, lab == r) for r in range(1, k + 1)]
    normal = ~masks
    xs, ys = [0.0], [0.0]
    for t in np.unique(maps)[::-1]:
        pred = maps >= t
        xs.append((pred & normal).sum() / normal.sum())
        ys.append(np.mean([pred[i][r].sum() / r.sum() for i, r in regions]))
    area = 0.0
    for i in range(1, len(xs)):
        x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
        if x0 >= limit:
            break
        if x1 > limit:  # linear interpolation at the limit
            y1 = y0 + (y1 - y0) * (limit - x0) / (x1 - x0)
            x1 = limit
        area += (x1 - x0) * (y0 + y1) / 2
    return area / limit


def _torch_path(maps: np.ndarray, masks: np.ndarray, limit: float, chunk: int) -> float:
    """The accelerator code path, run on CPU tensors."""
    m, g = as_images(torch.from_numpy(maps), torch.from_numpy(masks))
    return _aupro_torch(m, g, None, limit, chunk).aupro


def test_hand_worked_perfect_separation() -> None:
    # one region {0.9, 0.8}; normals {0.5, 0.3, 0.1}: PRO = 1 before any false positive
    maps = np.array([[[0.9, 0.8, 0.5, 0.3, 0.1]]])
    masks = np.array([[[1, 1, 0, 0, 0]]], dtype=bool)
    assert aupro(maps, masks) == pytest.approx(1.0, abs=1e-12)


def test_hand_worked_tie_and_interpolation() -> None:
    # region {0.9, 0.5}, normals {0.5, 0.2, 0.1}. Curve: (0,0) → (0,½) at t=0.9; the tie at
    # t=0.5 is one step (0,½) → (⅓,1). For L ≤ ⅓: PRO(x) = ½ + 3x/2, so
    # area = L/2 + 3L²/4 and AUPRO = ½ + 3L/4 (L = 0.3 → 0.725).
    maps = np.array([[[0.9, 0.5, 0.5, 0.2, 0.1]]])
    masks = np.array([[[1, 1, 0, 0, 0]]], dtype=bool)
    for limit in (0.05, 0.1, 0.2, 0.3, 1 / 3):
        assert aupro(maps, masks, limit) == pytest.approx(0.5 + 0.75 * limit, abs=1e-12)
        assert _torch_path(maps, masks, limit, 3) == pytest.approx(0.5 + 0.75 * limit,
                                                                    abs=1e-12)
    # full curve: (0,0) (0,½) (⅓,1) (⅔,1) (1,1): ¼ + ⅔ = 11/12
    assert aupro(maps, masks, 1.0) == pytest.approx(11 / 12, abs=1e-12)
    assert brute_force_aupro(maps, masks, 0.3) == pytest.approx(0.725, abs=1e-12)


def test_hand_worked_two_images_region_mean() -> None:
    # image 0: region R1 = {0.9, 0.4} (2 px); image 1: region R2 = {0.6} (1 px).
    # 9 normal pixels: 0.8 0.7 0.5 0.3 0.25 0.2 0.15 0.1 0.05.
    # Curve: t=0.9 (0, ¼) · t=0.8 (1/9, ¼) · t=0.7 (2/9, ¼) · t=0.6 (2/9, ¾) · t=0.5 (3/9, ¾)
    # area to 0.3 = ¼·2/9 + ¾·(0.3 − 2/9) = 1/18 + 7/120 = 41/360 → AUPRO = 41/108.
    maps = np.array([[[0.9, 0.4, 0.7], [0.1, 0.2, 0.3]],
                     [[0.6, 0.5, 0.05], [0.8, 0.15, 0.25]]])
    masks = np.zeros(maps.shape, dtype=bool)
    masks[0, 0, :2] = True
    masks[1, 0, 0] = True
    r = aupro_result(maps, masks)
    assert r.aupro == pytest.approx(41 / 108, abs=1e-12)
    assert (r.n_regions, r.n_anomalous, r.n_normal) == (2, 3, 9)
    assert _torch_path(maps, masks, 0.3, 5) == pytest.approx(41 / 108, abs=1e-12)
    assert brute_force_aupro(maps, masks, 0.3) == pytest.approx(41 / 108, abs=1e-12)


def test_eight_connectivity() -> None:
    # (0,0)-(0,1) touch horizontally, (0,1)-(1,2) only diagonally: one 8-connected region.
    mask = np.zeros((3, 3), dtype=bool)
    mask[0, 0] = mask[0, 1] = mask[1, 2] = True
    labels, n = connected_regions(mask)
    assert n == 1 and set(np.unique(labels[mask])) == {1}
    maps = np.array([[0.9, 0.9, 0.2], [0.3, 0.4, 0.05], [0.5, 0.6, 0.7]])
    # one region of 3 px with 2 found before any false positive: PRO = ⅔ (4-connectivity
    # would give mean(1, 0) = ½)
    assert aupro(maps, mask) == pytest.approx(2 / 3, abs=1e-12)
    # regions never connect across images (no 3-D connectivity)
    maps2 = np.full((2, 3, 3), 0.0)
    maps2[:, :, :] = np.linspace(0.1, 0.8, 9).reshape(3, 3)
    masks2 = np.zeros((2, 3, 3), dtype=bool)
    masks2[0, 2, :2] = True  # bottom row of image 0
    maps2[0, 2, :2] = 0.95
    masks2[1, 0, 0] = True  # top row of image 1
    maps2[1, 0, 0] = 0.01
    r = aupro_result(maps2, masks2)
    assert r.n_regions == 2
    assert r.aupro == pytest.approx(0.5, abs=1e-12)  # mean(1, 0); one region would be ⅔


def test_matches_brute_force_random_with_ties() -> None:
    rng = np.random.default_rng(0)
    checked = 0
    while checked < 80:
        n, h, w = int(rng.integers(1, 4)), int(rng.integers(2, 9)), int(rng.integers(2, 9))
        maps = rng.integers(0, int(rng.integers(2, 12)), (n, h, w)).astype(np.float32)
        blobs = ndimage.binary_dilation(rng.random((n, h, w)) < 0.1,
                                        structure=np.ones((1, 2, 2)))
        masks = blobs | (rng.random((n, h, w)) < 0.05)
        if not masks.any() or masks.all():
            continue
        maps += masks * rng.integers(0, 3)
        limit = float(rng.choice([0.3, 0.05, 1.0, rng.uniform(0.01, 1.0)]))
        chunk = int(rng.integers(1, 100))
        ref = brute_force_aupro(maps, masks, limit)
        assert aupro(maps, masks, limit, chunk) == pytest.approx(ref, abs=1e-10)
        assert _torch_path(maps, masks, limit, chunk) == pytest.approx(ref, abs=1e-10)
        checked += 1


def test_continuous_scores_and_input_forms() -> None:
    rng = np.random.default_rng(1)
    maps = rng.random((4, 10, 12))
    masks = np.zeros(maps.shape, dtype=bool)
    masks[0, 2:5, 3:7] = masks[2, 6:9, 1:3] = masks[2, 0, 11] = True
    maps[masks] += 0.3
    ref = brute_force_aupro(maps, masks, 0.3)
    assert aupro(maps, masks) == pytest.approx(ref, abs=1e-10)
    assert aupro(maps.astype(np.float32), masks.astype(np.uint8)) == pytest.approx(
        brute_force_aupro(maps.astype(np.float32), masks, 0.3), abs=1e-10)
    assert aupro(torch.from_numpy(maps), torch.from_numpy(masks)[:, None].float()) == (
        pytest.approx(ref, abs=1e-10))
    assert aupro(maps[0], masks[0]) == pytest.approx(  # a single H×W image
        brute_force_aupro(maps[:1], masks[:1], 0.3), abs=1e-10)
    rows = np.array([1, 2, 3])
    assert aupro_result(maps, masks, rows=rows).aupro == pytest.approx(
        brute_force_aupro(maps[rows], masks[rows], 0.3), abs=1e-10)


def test_errors() -> None:
    maps = np.random.default_rng(0).random((2, 4, 4))
    with pytest.raises(UndefinedMetricError, match="no anomalous pixel"):
        aupro(maps, np.zeros((2, 4, 4), dtype=bool))
    with pytest.raises(UndefinedMetricError, match="no normal pixel"):
        aupro(maps, np.ones((2, 4, 4), dtype=bool))
    masks = np.zeros((2, 4, 4), dtype=bool)
    masks[0, 0, 0] = True
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="fpr_limit"):
            aupro(maps, masks, bad)
    nan_maps = maps.copy()
    nan_maps[1, 3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        aupro(nan_maps, masks)
    with pytest.raises(ValueError, match="shape"):
        aupro(maps, masks[:, :3])
