"""AUPIMO (Bertoldo et al., arXiv 2401.01984): per-image overlap at a false-positive rate
measured on normal images only, integrated over FPR 1e-5…1e-4 on a log scale.

For a threshold ``t`` (anomalous when ``score ≥ t``):

- the shared FPR: ``FPR(t)`` = share of all pixels of the *normal* test images ``≥ t``;
- each anomalous image's TPR: ``TPR_i(t)`` = share of its anomalous pixels ``≥ t``.

``PIMO_i`` is the curve ``(FPR(t), TPR_i(t))``; ``AUPIMO_i`` its area over
``log FPR ∈ [log 1e-5, log 1e-4]``, divided by that interval's length (so in [0, 1]).

Exactly, as the exact AUROC reads a ROC curve: the curve's corners are at the distinct
normal-pixel scores (FPR changes only there). Between consecutive ones, ``t_j > t_{j+1}``,
TPR first rises at ``FPR(t_j)`` (anomalous pixels above ``t_{j+1}``) and then goes
straight to ``(FPR(t_{j+1}), TPR_i(t_{j+1}))`` — the ROC curve's line through tied scores,
i.e. ties broken at random, in expectation (the Mann–Whitney AUROC's ½). Each straight
piece ``TPR = c + s·FPR`` is integrated over log FPR in closed form,
``c·ln(B/A) + s·(B − A)``, cut at the two bounds — no threshold grid.

anomalib's ``AUPIMO`` samples 300,000 thresholds and integrates between the two grid
points nearest the bounds, yet divides by the full range: its values are lower by the
missing share of the range (about 1.5 % on 10⁵-pixel maps). Over the range it achieves,
scaled alike, the two agree to its grid (``tests/test_anomalib_differential.py``).

Only the top ``1e-4`` share of the normal pixels can fall in the range, so they are
gathered in two streaming passes (the k-th largest, then all at or above it):
memory stays at the anomalous pixels plus that share.

Undefined (``None`` with a reason) when the normal images have too few pixels for an FPR of
1e-5 (fewer than 100,000).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from multiad.metrics._inputs import ArrayLike, UndefinedMetricError, as_images, binarise, to_backend

FPR_BOUNDS = (1e-5, 1e-4)


@dataclass(frozen=True)
class AupimoResult:
    """AUPIMO of each image (NaN for normal images) and their mean over anomalous ones."""

    per_image: np.ndarray  # float64, one per image; NaN where the image has no anomaly
    mean: float
    n_normal_pixels: int
    fpr_bounds: tuple[float, float]


def _top_normal_scores(maps: np.ndarray, normal: np.ndarray, k: int) -> np.ndarray:
    """All normal-image pixel scores at or above the k-th largest one, sorted ascending."""
    kth = -np.inf
    best = np.empty(0, np.float64)
    for i in np.flatnonzero(normal):  # pass 1: the k largest, one image at a time
        v = maps[i].reshape(-1).astype(np.float64)
        v = v[v >= kth]
        best = np.concatenate([best, v])
        if best.size > k:
            best = np.partition(best, best.size - k)[best.size - k:]
            kth = float(best.min())
    if best.size < k:
        kth = float(best.min())
    kept = [maps[i].reshape(-1)[maps[i].reshape(-1) >= kth].astype(np.float64)
            for i in np.flatnonzero(normal)]  # pass 2: ties at the k-th included
    return np.sort(np.concatenate(kept))


def _segment_area(f0: float, f1: float, y0: np.ndarray, y1: np.ndarray, lo: float,
                  hi: float) -> np.ndarray:
    """∫ TPR d(ln FPR) of the straight piece (f0, y0)–(f1, y1) of the curve (FPR, TPR)
    over [f0, f1] ∩ [lo, hi] (FPR bounds, not logs)."""
    a, b = max(f0, lo), min(f1, hi)
    if b <= a or f1 == f0:
        return np.zeros_like(y0)
    s = (y1 - y0) / (f1 - f0)
    return (y0 - s * f0) * math.log(b / a) + s * (b - a)


def aupimo(anomaly_maps: ArrayLike, masks: ArrayLike,
           fpr_bounds: tuple[float, float] = FPR_BOUNDS) -> AupimoResult:
    """AUPIMO of every image of N×H×W ``anomaly_maps`` against ``masks``: normal images
    (no anomalous pixel) set the FPR, each anomalous image gets its own score."""
    maps, gt = as_images(to_backend(anomaly_maps, None), to_backend(masks, None))
    lo_fpr, hi_fpr = fpr_bounds
    if not 0 < lo_fpr < hi_fpr <= 1:
        raise ValueError(f"fpr_bounds {fpr_bounds}: expected 0 < low < high ≤ 1")
    n, h, w = maps.shape
    pos = binarise(gt).reshape(n, -1)
    anomalous = pos.any(axis=1)
    normal = ~anomalous
    n_normal_px = int(normal.sum()) * h * w
    if not anomalous.any():
        raise UndefinedMetricError("AUPIMO needs at least one image with anomalous pixels")
    if n_normal_px * lo_fpr < 1:
        raise UndefinedMetricError(
            f"AUPIMO needs ≥ {math.ceil(1 / lo_fpr):,} normal-image pixels for an FPR of "
            f"{lo_fpr:g}; the normal test images have {n_normal_px:,}")
    k = math.ceil(hi_fpr * n_normal_px) + 1  # enough to pass FPR = high
    top = _top_normal_scores(maps, normal, k)
    if np.isnan(top).any():
        raise ValueError("scores contain NaN")
    t_desc, first = np.unique(top, return_index=True)  # ascending, then reversed below
    n_ge = top.size - first  # normal pixels ≥ each distinct score
    t_desc, n_ge = t_desc[::-1], n_ge[::-1]
    fpr = n_ge / n_normal_px
    idx = np.flatnonzero(anomalous)
    per_image = np.full(n, np.nan)
    ge = np.empty((len(idx), len(t_desc)))  # TPR_i(≥ t_j)
    gt_next = np.empty_like(ge)  # TPR_i(> t_j): anomalous pixels strictly above t_j
    for r, i in enumerate(idx):
        s = np.sort(maps[i].reshape(-1)[pos[i]].astype(np.float64))
        ge[r] = (s.size - np.searchsorted(s, t_desc, side="left")) / s.size
        gt_next[r] = (s.size - np.searchsorted(s, t_desc, side="right")) / s.size
    # from FPR 0 (above every normal score) to t_0, then from each t_j to t_{j+1}
    area = _segment_area(0.0, fpr[0], gt_next[:, 0], ge[:, 0], lo_fpr, hi_fpr)
    for j in range(len(t_desc) - 1):
        if fpr[j] >= hi_fpr:
            break
        area += _segment_area(fpr[j], fpr[j + 1], gt_next[:, j + 1], ge[:, j + 1], lo_fpr,
                              hi_fpr)
    per_image[idx] = area / math.log(hi_fpr / lo_fpr)
    return AupimoResult(per_image, float(per_image[idx].mean()), n_normal_px,
                        (float(lo_fpr), float(hi_fpr)))
