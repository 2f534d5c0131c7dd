"""Exact AP and pooled-pixel F1-max against scikit-learn and a brute-force loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

from multiad.metrics import UndefinedMetricError, f1_max_result
from multiad.metrics.precision_recall import (
    average_precision,
    pixel_f1_max_result,
    precision_recall_counts,
)


@pytest.mark.parametrize("levels", [2, 7, None])
def test_ap_equals_sklearn_with_and_without_ties(levels: int | None) -> None:
    rng = np.random.default_rng(levels or 0)
    for _ in range(60):
        n = int(rng.integers(2, 400))
        s = (rng.integers(0, levels, n) if levels else rng.normal(size=n)).astype(np.float32)
        y = rng.random(n) < rng.uniform(0.02, 0.95)
        y[0] = True
        for chunk in (1, 5, 1 << 20):  # streaming changes nothing
            assert average_precision(s, y, chunk) == pytest.approx(
                average_precision_score(y, s), abs=1e-12)


def test_pixel_f1_max_equals_the_flat_f1_max_and_its_threshold() -> None:
    rng = np.random.default_rng(3)
    for _ in range(30):
        maps = np.round(rng.normal(size=(6, 9, 11)), 1).astype(np.float32)  # many ties
        masks = rng.random((6, 9, 11)) < 0.1
        masks[0, 0, 0] = True
        r, ref = pixel_f1_max_result(maps, masks, 40), f1_max_result(maps.ravel(),
                                                                      masks.ravel())
        assert (r.f1, r.threshold) == pytest.approx((ref.f1, ref.threshold), abs=1e-12)
        assert (r.precision, r.recall) == pytest.approx((ref.precision, ref.recall))


def test_hand_worked_case() -> None:
    # scores 4 3 3 2 1, labels 1 0 1 0 1: thresholds 4 (P=1, R=1/3), 3 (2/3, 2/3), 1 (3/5, 1)
    s, y = np.array([4, 3, 3, 2, 1.0]), np.array([1, 0, 1, 0, 1])
    assert average_precision(s, y) == pytest.approx((1 + 2 / 3 + 3 / 5) / 3, abs=1e-15)
    c = precision_recall_counts(s, y)
    assert c.thresholds.tolist() == [4, 3, 1] and c.tp.tolist() == [1, 2, 3]
    assert c.fp.tolist() == [0, 1, 2]
    f1 = pixel_f1_max_result(s[None], y[None])
    assert f1.f1 == pytest.approx(max(2 * 1 / 4, 2 * 2 / 6, 2 * 3 / 8)) and f1.threshold == 1.0


def test_rows_select_images_and_tensors_are_accepted() -> None:
    rng = np.random.default_rng(5)
    maps = rng.random((8, 10, 10)).astype(np.float32)
    masks = rng.random((8, 10, 10)) < 0.05
    masks[1, 0, 0] = True
    rows = np.array([1, 4, 6])
    sub = average_precision(maps[rows], masks[rows])
    assert average_precision(maps, masks, 30, rows=rows) == pytest.approx(sub, abs=1e-15)
    assert average_precision(torch.from_numpy(maps), torch.from_numpy(masks)) == \
        pytest.approx(average_precision_score(masks.ravel(), maps.ravel()), abs=1e-12)


def test_undefined_and_nan() -> None:
    with pytest.raises(UndefinedMetricError):
        average_precision([0.1, 0.2], [0, 0])
    with pytest.raises(ValueError, match="NaN"):
        average_precision([np.nan, 0.2, 0.5], [1, 0, 0])
    with pytest.raises(ValueError, match="NaN"):
        average_precision(np.array([0.1, 0.9, np.nan]), np.array([1, 0, 0]))
