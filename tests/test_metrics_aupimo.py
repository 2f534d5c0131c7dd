"""AUPIMO against a reference built on scikit-learn's ROC curve, hand-worked cases, and
its limits (too few normal pixels)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_curve

from multiad.metrics import UndefinedMetricError
from multiad.metrics.aupimo import aupimo


def reference(maps: np.ndarray, masks: np.ndarray, lo: float = 1e-5, hi: float = 1e-4
              ) -> np.ndarray:
    """Per image: sklearn's ROC of the normal images' pixels against the image's anomalous
    pixels (every distinct score a threshold, straight lines through ties), each piece's
    TPR integrated over log FPR numerically (Simpson on a fine log grid)."""
    n = len(maps)
    pos = masks.reshape(n, -1) > 0
    anomalous = pos.any(axis=1)
    normal = maps[~anomalous].reshape(-1)
    out = np.full(n, np.nan)
    lo_x, hi_x = math.log(lo), math.log(hi)
    for i in np.flatnonzero(anomalous):
        a = maps[i].reshape(-1)[pos[i]]
        fpr, tpr, _ = roc_curve(np.r_[np.zeros(normal.size), np.ones(a.size)],
                                np.r_[normal, a], drop_intermediate=False)
        area = 0.0
        for j in range(len(fpr) - 1):
            a_, b_ = max(fpr[j], lo), min(fpr[j + 1], hi)
            if b_ <= a_ or fpr[j + 1] == fpr[j]:
                continue
            x = np.linspace(math.log(a_), math.log(b_), 2001)
            y = np.interp(np.exp(x), fpr[j:j + 2], tpr[j:j + 2])
            h = (x[-1] - x[0]) / 2000
            area += h / 3 * (y[0] + y[-1] + 4 * y[1:-1:2].sum() + 2 * y[2:-1:2].sum())
        out[i] = area / (hi_x - lo_x)
    return out


def _maps(seed: int, ties: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    maps = rng.normal(size=(10, 128, 128)).astype(np.float32)  # 8 normal: 131,072 pixels
    if ties:
        maps = np.round(maps * 30) / 30
    masks = np.zeros(maps.shape, bool)
    for i in range(2):
        masks[i, 10:30, 10:40] = True
        maps[i, 10:30, 10:40] += rng.uniform(2.5, 4.5)
    return maps, masks


@pytest.mark.parametrize("seed, ties", [(0, False), (1, True), (2, False), (3, True)])
def test_aupimo_equals_the_reference(seed: int, ties: bool) -> None:
    maps, masks = _maps(seed, ties)
    r = aupimo(maps, masks)
    ref = reference(maps, masks)
    assert np.isnan(r.per_image[2:]).all()
    np.testing.assert_allclose(r.per_image[:2], ref[:2], rtol=0, atol=1e-10)
    assert r.mean == pytest.approx(ref[:2].mean(), abs=1e-10)
    assert 0.0 < r.mean < 1.0 and r.n_normal_pixels == 8 * 128 * 128


def test_hand_worked_extremes() -> None:
    maps, masks = _maps(0, False)
    maps[0][masks[0]] = 100.0  # above every normal pixel: TPR 1 over the whole range
    maps[1][masks[1]] = -100.0  # below every normal pixel: TPR 0
    r = aupimo(maps, masks)
    assert r.per_image[0] == pytest.approx(1.0, abs=1e-12)
    assert r.per_image[1] == pytest.approx(0.0, abs=1e-12)


def test_too_few_normal_pixels_is_said() -> None:
    maps, masks = _maps(0, False)
    with pytest.raises(UndefinedMetricError, match="100,000 normal-image pixels"):
        aupimo(maps[:6], masks[:6])  # 4 normal images: 65,536 pixels
    with pytest.raises(UndefinedMetricError, match="at least one image"):
        aupimo(maps[2:], masks[2:])
