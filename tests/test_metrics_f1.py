"""F1-max against a brute-force loop and scikit-learn's precision-recall curve."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import precision_recall_curve

from multiad.metrics import UndefinedMetricError, f1_max, f1_max_result, f1_max_threshold


def brute_force_f1(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    best, best_t = -1.0, None
    for t in np.unique(scores)[::-1]:  # highest threshold first: ties keep the highest
        pred = scores >= t
        tp = np.sum(pred & labels)
        fp = np.sum(pred & ~labels)
        fn = np.sum(~pred & labels)
        f1 = 2 * tp / (2 * tp + fp + fn)
        if f1 > best + 1e-15:
            best, best_t = f1, t
    return best, float(best_t)


def sklearn_f1(scores: np.ndarray, labels: np.ndarray) -> float:
    p, r, _ = precision_recall_curve(labels, scores)
    with np.errstate(invalid="ignore", divide="ignore"):
        f = np.where(p + r > 0, 2 * p * r / (p + r), 0.0)
    return float(f.max())


@pytest.mark.parametrize("levels", [2, 5, 50, None])
def test_f1_max_random_with_ties(levels: int | None) -> None:
    rng = np.random.default_rng(levels or 1)
    for _ in range(50):
        n = int(rng.integers(1, 200))
        y = rng.random(n) < rng.uniform(0.05, 0.95)
        if not y.any():
            continue
        s = rng.random(n) if levels is None else rng.integers(0, levels, n).astype(float)
        s = s + y * rng.random()
        f, t = f1_max_threshold(s, y)
        bf, bt = brute_force_f1(s, y)
        assert f == pytest.approx(bf, abs=1e-12)
        assert t == bt
        assert f == pytest.approx(sklearn_f1(s, y), abs=1e-12)


def test_f1_max_hand_worked() -> None:
    # thresholds: 0.9 → P=1, R=⅓ (F1 ½); 0.8 → tp 2 fp 0 (F1 0.8); 0.5 (tie of a
    # positive and a negative, one step) → tp 3 fp 1 (F1 6/7); 0.1 → tp 3 fp 3 (F1 ⅔)
    s = [0.9, 0.8, 0.5, 0.5, 0.1, 0.1]
    y = [1, 1, 1, 0, 0, 0]
    r = f1_max_result(s, y)
    assert r.f1 == pytest.approx(6 / 7)
    assert r.threshold == 0.5
    assert (r.precision, r.recall) == (pytest.approx(0.75), pytest.approx(1.0))
    assert f1_max(torch.tensor(s), torch.tensor(y)) == pytest.approx(6 / 7)
    assert f1_max([0.3, 0.3, 0.3], [1, 0, 0]) == pytest.approx(0.5)
    assert f1_max_threshold([0.2, 0.7], [1, 1]) == (1.0, 0.2)


def test_f1_max_errors() -> None:
    with pytest.raises(UndefinedMetricError):
        f1_max([0.1, 0.2], [0, 0])
    with pytest.raises(ValueError, match="NaN"):
        f1_max([0.1, np.nan], [0, 1])
    with pytest.raises(ValueError, match="size"):
        f1_max([0.1, 0.2, 0.3], [0, 1])
