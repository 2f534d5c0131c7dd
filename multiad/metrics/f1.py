"""Exact F1-max: the best F1 over every threshold (all distinct scores, ties merged).

A sample is predicted anomalous when ``score ≥ threshold``. Scores are sorted once in
descending order; at the end of each group of equal scores the cumulative true/false
positives give ``F1 = 2·TP / (TP + FP + P)``. The maximum and the (highest) threshold that
attains it are returned. Equals the maximum of ``2PR/(P+R)`` over scikit-learn's
``precision_recall_curve``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from multiad.metrics._inputs import ArrayLike, UndefinedMetricError, binarise, to_backend


@dataclass(frozen=True)
class F1Result:
    """Best F1 and where it is attained (predict anomalous when score ≥ threshold)."""

    f1: float
    threshold: float
    precision: float
    recall: float


def f1_max(scores: ArrayLike, labels: ArrayLike) -> float:
    """Maximum F1 over all thresholds (exact)."""
    return f1_max_result(scores, labels).f1


def f1_max_threshold(scores: ArrayLike, labels: ArrayLike) -> tuple[float, float]:
    """``(F1-max, threshold)``: the highest threshold attaining the maximum F1."""
    r = f1_max_result(scores, labels)
    return r.f1, r.threshold


def f1_max_result(scores: ArrayLike, labels: ArrayLike) -> F1Result:
    """F1-max with its threshold, precision and recall.

    Inputs: numpy arrays, sequences or torch tensors (any device) of the same shape; labels
    are binarised (bool, floats > 0.5, integers > 0). Raises ``ValueError`` on NaN scores
    and :class:`UndefinedMetricError` without any positive label.
    """
    s = np.asarray(to_backend(scores, None), dtype=np.float64).reshape(-1)
    y = binarise(to_backend(labels, None)).reshape(-1)
    if s.shape != y.shape:
        raise ValueError(f"scores and labels differ in size: {s.size} vs {y.size}")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN")
    n_pos = int(np.count_nonzero(y))
    if n_pos == 0:
        raise UndefinedMetricError("F1 is undefined without any positive label")
    order = np.argsort(-s, kind="stable")
    s_desc, y_desc = s[order], y[order]
    tp_all = np.cumsum(y_desc, dtype=np.int64)
    ends = np.flatnonzero(np.append(s_desc[1:] != s_desc[:-1], True))  # last of each group
    tp = tp_all[ends]
    fp = ends + 1 - tp
    f1 = 2.0 * tp / (tp + fp + n_pos)
    best = int(np.argmax(f1))
    return F1Result(f1=float(f1[best]), threshold=float(s_desc[ends[best]]),
                    precision=float(tp[best] / (tp[best] + fp[best])),
                    recall=float(tp[best] / n_pos))
