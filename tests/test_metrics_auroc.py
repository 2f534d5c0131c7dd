"""Exact AUROC / pooled pixel AUROC against scikit-learn, with heavy ties."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from multiad.metrics import UndefinedMetricError, auroc, auroc_result, pixel_auroc
from multiad.metrics._inputs import as_rows
from multiad.metrics.auroc import _u2_torch, rank_sum


def _both_classes(y: np.ndarray) -> bool:
    return bool(y.any() and not y.all())


def _torch_path(scores: np.ndarray, labels: np.ndarray, chunk: int) -> float:
    """The accelerator code path, run on CPU tensors."""
    v, lab = as_rows(torch.from_numpy(scores), torch.from_numpy(labels))
    u2, p, n = _u2_torch(v, lab, None, chunk)
    return u2 / (2 * p * n)


@pytest.mark.parametrize("levels", [2, 3, 10, 1000, None])
def test_auroc_matches_sklearn_with_ties(levels: int | None) -> None:
    rng = np.random.default_rng(levels or 0)
    for _ in range(40):
        n = int(rng.integers(2, 400))
        y = rng.random(n) < rng.uniform(0.05, 0.95)
        if not _both_classes(y):
            continue
        s = rng.random(n) if levels is None else rng.integers(0, levels, n).astype(float)
        s = s + 0.3 * y * rng.random()  # some separation, ties kept
        ref = roc_auc_score(y, s)
        assert abs(auroc(s, y) - ref) < 1e-9
        assert abs(auroc(s.astype(np.float32), y.astype(np.int64)) -
                   roc_auc_score(y, s.astype(np.float32))) < 1e-9


def test_auroc_dtypes_and_containers() -> None:
    rng = np.random.default_rng(1)
    y = rng.random(300) < 0.3
    s = rng.integers(0, 7, 300)
    ref = roc_auc_score(y, s)
    assert auroc(s, y) == pytest.approx(ref, abs=1e-12)  # integer scores
    assert auroc(s.tolist(), y.tolist()) == pytest.approx(ref, abs=1e-12)
    assert auroc(torch.from_numpy(s).float(), torch.from_numpy(y)) == pytest.approx(ref, abs=1e-12)
    assert auroc(torch.from_numpy(s).half(), torch.from_numpy(y).float()) == pytest.approx(
        ref, abs=1e-12)
    assert auroc(torch.from_numpy(s).bfloat16(), y.astype(np.uint8)) == pytest.approx(
        ref, abs=1e-12)
    t = torch.from_numpy(s.astype(np.float32)).requires_grad_()
    assert auroc(t, y) == pytest.approx(ref, abs=1e-12)


def test_auroc_edge_values() -> None:
    assert auroc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1]) == 0.5
    assert auroc([1.0, 2.0], [0, 1]) == 1.0
    assert auroc([1.0, 2.0], [1, 0]) == 0.0
    assert auroc([-0.0, 0.0], [0, 1]) == 0.5  # -0 and +0 are one tie
    # pos {0, inf} vs neg {-inf, inf}: win, loss, win, tie → 2.5 / 4
    assert auroc([-np.inf, 0.0, np.inf, np.inf], [0, 1, 1, 0]) == 0.625
    s = np.arange(10.0)
    y = np.zeros(10, bool)
    y[3] = True
    assert auroc(s, y) == pytest.approx(3 / 9)


def test_auroc_errors() -> None:
    with pytest.raises(ValueError, match="only one class"):
        auroc([0.1, 0.2, 0.3], [0, 0, 0])
    with pytest.raises(UndefinedMetricError):
        auroc(np.ones(5), np.ones(5))
    with pytest.raises(ValueError, match="NaN"):
        auroc([0.1, np.nan, 0.3], [0, 1, 0])
    with pytest.raises(ValueError, match="NaN"):
        auroc([0.1, 0.2, np.nan], [0, 1, 0])
    with pytest.raises(ValueError, match="shape"):
        auroc([0.1, 0.2, 0.3], [0, 1])


def _random_maps(rng: np.random.Generator, n: int, h: int, w: int, pos_frac: float,
                 levels: int) -> tuple[np.ndarray, np.ndarray]:
    masks = rng.random((n, h, w)) < pos_frac
    maps = (rng.integers(0, levels, (n, h, w)) + 2 * masks * rng.random((n, h, w)))
    return np.floor(maps).astype(np.float32), masks


@pytest.mark.parametrize("pos_frac", [0.03, 0.5, 0.9])
@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 20])
def test_pixel_auroc_matches_sklearn(pos_frac: float, chunk: int) -> None:
    rng = np.random.default_rng(int(pos_frac * 100) + chunk)
    maps, masks = _random_maps(rng, 6, 9, 11, pos_frac, levels=5)
    ref = roc_auc_score(masks.ravel(), maps.ravel())
    assert abs(pixel_auroc(maps, masks, chunk_pixels=chunk) - ref) < 1e-9
    assert abs(_torch_path(maps, masks, chunk) - ref) < 1e-9
    t = pixel_auroc(torch.from_numpy(maps), torch.from_numpy(masks), chunk_pixels=chunk)
    assert abs(t - ref) < 1e-9


def test_pixel_auroc_random_cases_both_paths() -> None:
    rng = np.random.default_rng(7)
    for _ in range(60):
        n, h, w = (int(x) for x in rng.integers(1, 9, 3))
        maps, masks = _random_maps(rng, n, h, w, rng.uniform(0.01, 0.99),
                                   int(rng.integers(1, 30)))
        if not _both_classes(masks):
            continue
        if rng.random() < 0.5:
            maps = maps.astype(np.float64) + rng.random(maps.shape)
        ref = roc_auc_score(masks.ravel(), maps.ravel())
        chunk = int(rng.integers(1, 200))
        assert abs(pixel_auroc(maps, masks, chunk_pixels=chunk) - ref) < 1e-9
        assert abs(_torch_path(maps, masks, chunk) - ref) < 1e-9


def test_pixel_auroc_mask_formats_and_rows() -> None:
    rng = np.random.default_rng(3)
    maps, masks = _random_maps(rng, 8, 6, 5, 0.2, levels=4)
    masks[0, 0, 0] = masks[1, 0, 0] = True
    ref = roc_auc_score(masks.ravel(), maps.ravel())
    assert pixel_auroc(maps, masks.astype(np.uint8) * 255) == pytest.approx(ref, abs=1e-12)
    assert pixel_auroc(maps, masks.astype(np.float32)) == pytest.approx(ref, abs=1e-12)
    assert pixel_auroc(maps, masks[:, None]) == pytest.approx(ref, abs=1e-12)  # N×1×H×W
    assert pixel_auroc(maps[:, None], masks) == pytest.approx(ref, abs=1e-12)
    rows = np.array([0, 1, 5, 6])
    sub = roc_auc_score(masks[rows].ravel(), maps[rows].ravel())
    r = auroc_result(maps, masks, 13, rows=rows)
    assert r.auroc == pytest.approx(sub, abs=1e-12)
    assert r.n_pos == int(masks[rows].sum()) and r.n_neg == masks[rows].size - r.n_pos
    with pytest.raises(ValueError, match="shape"):
        pixel_auroc(maps, masks[:, :3])


def test_rank_sum_counts_pairs() -> None:
    rng = np.random.default_rng(5)
    ref = np.sort(rng.integers(0, 6, 50).astype(float))
    q = np.sort(rng.integers(-1, 8, 30).astype(float))
    w = rng.random(30)
    expect = [(ref < x).sum() + (ref <= x).sum() for x in q]
    assert rank_sum(ref, q) == sum(expect)
    assert rank_sum(ref, q, w) == pytest.approx(float(np.dot(w, expect)), rel=1e-12)
