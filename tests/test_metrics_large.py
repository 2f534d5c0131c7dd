"""A 20 M-pixel case, checked against histogram-based exact references (no timing)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from multiad.metrics import aupro_result, auroc_result
from multiad.metrics.bench import synthetic_maps

LEVELS = 256


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    maps, masks = synthetic_maps(305, 256, seed=3, shift=0.2)  # 20 M pixels
    levels = np.floor(maps.numpy() * (LEVELS - 1) / 0.8).astype(np.float32)  # heavy ties
    return levels, masks.numpy()


def _hist(values: np.ndarray) -> np.ndarray:
    return np.bincount(values.astype(np.int64), minlength=LEVELS)


def test_pixel_auroc_20m(data: tuple[np.ndarray, np.ndarray]) -> None:
    maps, masks = data
    r = auroc_result(maps, masks)
    pos, neg = _hist(maps[masks]), _hist(maps[~masks])
    neg_below = np.concatenate([[0], np.cumsum(neg)[:-1]])
    u2 = int(np.sum(pos * (2 * neg_below + neg)))
    assert (r.n_pos, r.n_neg) == (int(pos.sum()), int(neg.sum()))
    assert r.u2 == u2
    assert r.auroc == pytest.approx(u2 / (2 * r.n_pos * r.n_neg), abs=1e-12)


def test_aupro_20m(data: tuple[np.ndarray, np.ndarray]) -> None:
    maps, masks = data
    r = aupro_result(maps, masks)
    # reference: the curve at every score level from per-region histograms
    ids, n_regions, sizes = [], 0, []
    for i in np.flatnonzero(masks.reshape(len(masks), -1).any(axis=1)):
        lab, k = ndimage.label(masks[i], structure=np.ones((3, 3)))
        ids.append(lab[masks[i]] - 1 + n_regions)
        n_regions += k
    region = np.concatenate(ids)
    sizes = np.bincount(region)
    lv = maps[masks].astype(np.int64)
    per_region = np.bincount(region * LEVELS + lv, minlength=n_regions * LEVELS)
    per_region = per_region.reshape(n_regions, LEVELS)
    # levels descending: fraction of each region at or above the level
    cover = np.cumsum(per_region[:, ::-1], axis=1) / sizes[:, None]
    pro = np.concatenate([[0.0], cover.mean(axis=0)])
    neg = _hist(maps[~masks])
    fpr = np.concatenate([[0.0], np.cumsum(neg[::-1]) / neg.sum()])
    area, limit = 0.0, 0.3
    for i in range(1, len(fpr)):
        x0, x1, y0, y1 = fpr[i - 1], fpr[i], pro[i - 1], pro[i]
        if x0 >= limit:
            break
        if x1 > limit:
            y1, x1 = y0 + (y1 - y0) * (limit - x0) / (x1 - x0), limit
        area += (x1 - x0) * (y0 + y1) / 2
    assert r.n_regions == n_regions
    assert r.aupro == pytest.approx(area / limit, abs=1e-9)


def test_pixel_ap_and_f1_max_20m(data: tuple[np.ndarray, np.ndarray]) -> None:
    """Streamed in chunks; the reference reads the curve at each score level (histograms)."""
    from multiad.metrics.precision_recall import average_precision, pixel_f1_max_result

    maps, masks = data
    pos, neg = _hist(maps[masks]), _hist(maps[~masks])
    tp, fp = np.cumsum(pos[::-1]), np.cumsum(neg[::-1])  # ≥ each level, highest first
    at = pos[::-1] > 0
    ap = float(np.sum(pos[::-1][at] / pos.sum() * tp[at] / (tp[at] + fp[at])))
    f1 = 2 * tp[at] / (tp[at] + fp[at] + pos.sum())
    assert average_precision(maps, masks, 1 << 22) == pytest.approx(ap, abs=1e-12)
    r = pixel_f1_max_result(maps, masks, 1 << 22)
    assert r.f1 == pytest.approx(float(f1.max()), abs=1e-12)
    assert r.threshold == float(np.arange(LEVELS)[::-1][at][int(np.argmax(f1))])
