"""Exact average precision (AP) and pooled-pixel F1-max, memory-bounded.

Both read the precision–recall curve at its only thresholds that matter: the distinct
scores of the positives (recall changes only there, and F1 is highest at one of them:
raising a threshold past negatives alone loses no true positive). For each such score
``t`` (predict anomalous when ``score ≥ t``):

- ``TP(t)``: positives ``≥ t``, from the sorted positive scores;
- ``FP(t)``: negatives ``≥ t``, counted chunk by chunk (negatives below the smallest
  positive are skipped; the rest of a chunk is sorted and every ``t`` is looked up with
  one ``searchsorted``, as the exact AUROC does).

Then ``AP = Σ_t (n_pos(t)/P) · TP(t)/(TP(t)+FP(t))`` — scikit-learn's
``average_precision_score`` (the step sum over the curve, no interpolation) — and
``F1-max = max_t 2·TP(t)/(TP(t)+FP(t)+P)``. Counts are exact integers; one float64 sum at
the end. Extra memory: the positives' sorted scores, one int64 count per distinct one,
and one chunk's buffers (MVTec AD scale, 250 M pixels with a few percent anomalous: a
few hundred MB). CUDA inputs are copied to the host (the curve needs the host anyway).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from multiad.metrics._inputs import (
    DEFAULT_CHUNK_PIXELS,
    ArrayLike,
    UndefinedMetricError,
    as_rows,
    binarise,
    check_rows,
    n_threads,
    row_blocks,
    to_backend,
    work_dtype_numpy,
)
from multiad.metrics.f1 import F1Result


@dataclass(frozen=True)
class PrecisionRecallCounts:
    """The curve at the positives' distinct scores, highest first."""

    thresholds: np.ndarray  # distinct positive scores, descending
    tp: np.ndarray  # positives ≥ threshold (int64)
    fp: np.ndarray  # negatives ≥ threshold (int64)
    n_pos: int
    n_neg: int


def precision_recall_counts(scores: ArrayLike, labels: ArrayLike,
                            chunk_pixels: int = DEFAULT_CHUNK_PIXELS, *,
                            rows: np.ndarray | None = None) -> PrecisionRecallCounts:
    """TP and FP at every distinct positive score (see the module docstring). ``rows``
    selects rows (images) along the first axis."""
    values, labs = as_rows(to_backend(scores, None), to_backend(labels, None))
    sel = check_rows(rows, values.shape[0])
    n_rows, row_len = values.shape
    blocks = row_blocks(n_rows, row_len, chunk_pixels, sel)
    dt = work_dtype_numpy(values.dtype)
    pos = np.concatenate([values[b][binarise(labs[b])].astype(dt, copy=False)
                          for b in blocks]) if blocks else np.empty(0, dt)
    n_all = (n_rows if sel is None else len(sel)) * row_len
    n_pos, n_neg = int(pos.size), n_all - int(pos.size)
    if n_pos == 0:
        raise UndefinedMetricError("precision and recall are undefined without any positive "
                                   "label")
    if np.isnan(pos).any():
        raise ValueError("scores contain NaN")
    pos.sort()
    uniq, first = np.unique(pos, return_index=True)  # ascending distinct positive scores
    n_below = first  # positives below each distinct score
    lowest = uniq[0]

    def chunk_counts(b: slice | np.ndarray) -> np.ndarray:
        v = values[b]
        neg = v[~binarise(labs[b]) & ~(v < lowest)].astype(dt, copy=False)  # NaN kept
        if neg.size == 0:
            return np.zeros(len(uniq), np.int64)
        neg.sort()
        if np.isnan(neg[-1]):
            raise ValueError("scores contain NaN")
        return neg.size - np.searchsorted(neg, uniq, side="left").astype(np.int64)

    with ThreadPoolExecutor(max_workers=n_threads()) as pool:
        fp = np.zeros(len(uniq), np.int64)
        for c in pool.map(chunk_counts, blocks):
            fp += c
    tp = n_pos - n_below.astype(np.int64)
    return PrecisionRecallCounts(uniq[::-1].copy(), tp[::-1].copy(), fp[::-1].copy(),
                                 n_pos, n_neg)


def average_precision(scores: ArrayLike, labels: ArrayLike,
                      chunk_pixels: int = DEFAULT_CHUNK_PIXELS, *,
                      rows: np.ndarray | None = None) -> float:
    """Exact AP of ``scores`` against binary ``labels`` (equals scikit-learn's
    ``average_precision_score``); for N×H×W maps and masks, over all pixels pooled."""
    return ap_of(precision_recall_counts(scores, labels, chunk_pixels, rows=rows))


def pixel_f1_max_result(anomaly_maps: ArrayLike, masks: ArrayLike,
                        chunk_pixels: int = DEFAULT_CHUNK_PIXELS, *,
                        rows: np.ndarray | None = None) -> F1Result:
    """Exact F1-max over all pixels pooled, with its threshold (the highest attaining it),
    precision and recall; equals :func:`multiad.metrics.f1.f1_max_result` on the
    flattened arrays, in bounded memory."""
    return f1_max_of(precision_recall_counts(anomaly_maps, masks, chunk_pixels, rows=rows))


def ap_of(c: PrecisionRecallCounts) -> float:
    """AP from the curve's counts (the step sum of precision over recall gained)."""
    gained = np.diff(np.concatenate([[0], c.tp]))  # positives at each threshold
    return float(np.sum(gained / c.n_pos * (c.tp / (c.tp + c.fp))))


def f1_max_of(c: PrecisionRecallCounts) -> F1Result:
    """F1-max from the curve's counts, at the highest threshold attaining it."""
    f1 = 2.0 * c.tp / (c.tp + c.fp + c.n_pos)
    best = int(np.argmax(f1))  # thresholds descend: the first maximum is the highest
    tp, fp = int(c.tp[best]), int(c.fp[best])
    return F1Result(f1=float(f1[best]), threshold=float(c.thresholds[best]),
                    precision=tp / (tp + fp), recall=tp / c.n_pos)
