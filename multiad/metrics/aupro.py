"""AUPRO, the normalised area under the per-region-overlap (PRO) curve (MVTec AD definition).

Definition (global over all test images):

- regions: the connected components (8-connectivity) of every image's mask; ``K`` in all;
- FPR(t): fraction of all normal (mask = 0) pixels of all images with score ≥ t;
- PRO(t): mean over the ``K`` regions of the fraction of the region's pixels with score ≥ t;
- the curve runs over every distinct score, descending, from (0, 0); equal scores form one
  step. Equivalently: one descending sort of all pixels, where a normal pixel adds
  ``1/N_normal`` to FPR and a pixel of region k adds ``1/(|region k|·K)`` to PRO;
- AUPRO = trapezoid area of PRO over FPR ∈ [0, fpr_limit] (linear interpolation at the
  limit) divided by ``fpr_limit``.

Algorithm (exact, no global sort). Only normal pixels above the threshold where FPR
crosses the limit matter:

1. Label the regions (``scipy.ndimage.label`` per image with a 3×3 structure, on the CPU
   also for CUDA inputs) and give every anomalous pixel its weight ``w = 1/(|region|·K)``.
2. ``t*`` = the k-th largest normal score, k the smallest count with ``k/N > fpr_limit``
   (CPU: a selection with ``np.partition``; CUDA: one radix sort of the normal scores,
   much faster there than ``torch.kthvalue``).
3. Every normal pixel x with score s > t* is a full trapezoid step of width 1/N whose
   heights are PRO(>s) and PRO(≥s), so that part of the area is
   ``Σ_x (PRO(>s_x) + PRO(≥s_x)) / (2N) = Σ_a w_a·(#{x: s_x < a} + #{x: s_x ≤ a}) / (2N)``
   over anomalous pixels a — two ``searchsorted`` calls between the sorted anomalous scores
   and the sorted candidate normal scores (float64 accumulation).
4. The step at t* (from FPR ``#{> t*}/N`` ≤ limit to ``#{≥ t*}/N`` > limit) is cut at the
   limit with linear interpolation.

Vertical steps (anomalous pixels only) add no area, so this equals the trapezoid integral
of the full curve. Extra memory: one copy of the normal scores plus the anomalous scores
with their weights (on CUDA also the sort's int64 indices, transiently).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from multiad.metrics._inputs import (
    DEFAULT_CHUNK_PIXELS,
    ArrayLike,
    UndefinedMetricError,
    as_images,
    binarise,
    check_rows,
    n_threads,
    resolve_device,
    row_blocks,
    to_backend,
    work_dtype_numpy,
    work_dtype_torch,
)
from multiad.metrics.auroc import rank_sum

_STRUCTURE_8 = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class AuproResult:
    """AUPRO with the counts it was computed from."""

    aupro: float
    fpr_limit: float
    n_regions: int
    n_anomalous: int
    n_normal: int


def aupro(anomaly_maps: ArrayLike, masks: ArrayLike, fpr_limit: float = 0.3,
          chunk_pixels: int = DEFAULT_CHUNK_PIXELS, *,
          device: str | torch.device | None = None) -> float:
    """AUPRO up to ``fpr_limit`` (MVTec definition; see the module docstring).

    ``anomaly_maps``: N×H×W scores (numpy or torch, CUDA tensors run on the GPU);
    ``masks``: N×H×W ground truth (bool, or binarised: floats > 0.5, integers > 0).
    Raises ``ValueError`` when the masks hold no anomalous or no normal pixel.
    """
    return aupro_result(anomaly_maps, masks, fpr_limit, chunk_pixels, device=device).aupro


def connected_regions(mask: ArrayLike) -> tuple[np.ndarray, int]:
    """Label the 8-connected regions of one H×W mask: (int32 labels, 0 = background; count)."""
    m = binarise(to_backend(mask, None))
    if m.ndim != 2:
        raise ValueError(f"expected an H×W mask, got shape {m.shape}")
    labels, n = ndimage.label(m, structure=_STRUCTURE_8)
    return labels, int(n)


def aupro_result(anomaly_maps: ArrayLike, masks: ArrayLike, fpr_limit: float = 0.3,
                 chunk_pixels: int = DEFAULT_CHUNK_PIXELS, *,
                 device: str | torch.device | None = None,
                 rows: np.ndarray | None = None) -> AuproResult:
    """AUPRO with counts; ``rows`` optionally selects images along the first axis."""
    if not 0.0 < fpr_limit <= 1.0:
        raise ValueError(f"fpr_limit must be in (0, 1], got {fpr_limit}")
    dev = resolve_device(anomaly_maps, masks, device=device)
    maps, gts = as_images(to_backend(anomaly_maps, dev), to_backend(masks, dev))
    sel = check_rows(rows, maps.shape[0])
    impl = _aupro_numpy if dev is None else _aupro_torch
    return impl(maps, gts, sel, float(fpr_limit), chunk_pixels)


def _region_ids(masks: np.ndarray, first_id: int) -> tuple[np.ndarray, int]:
    """Region id (0-based, from ``first_id``) of every True pixel of k×H×W masks, in raster
    order, and the next free id."""
    ids, nxt = [], first_id
    for m in masks:
        lab, k = ndimage.label(m, structure=_STRUCTURE_8)
        ids.append(lab[m].astype(np.int64) + (nxt - 1))
        nxt += int(k)
    return np.concatenate(ids), nxt


def _crossing_count(n_normal: int, limit: float) -> int:
    """Smallest integer k with ``k / n_normal > limit`` (as float64 evaluates it)."""
    k = int(math.floor(limit * n_normal)) + 1
    while k > 1 and (k - 1) / n_normal > limit:
        k -= 1
    while k / n_normal <= limit:
        k += 1
    return k


def _check_counts(n_anom: int, n_normal: int) -> None:
    if n_anom == 0:
        raise UndefinedMetricError("AUPRO is undefined: the masks contain no anomalous pixel")
    if n_normal == 0:
        raise UndefinedMetricError("AUPRO is undefined: the masks contain no normal pixel")


def _finish(area_full: float, limit: float, n_normal: int, c_gt: int, c_eq: int,
            p_gt: float, p_ge: float) -> float:
    """Add the step at t* cut at ``limit`` (if any: ``c_eq > 0``) and normalise."""
    area = area_full
    if c_eq > 0:
        f0, f1 = c_gt / n_normal, (c_gt + c_eq) / n_normal
        p_lim = p_gt + (p_ge - p_gt) * (limit - f0) / (f1 - f0)
        area += (limit - f0) * (p_gt + p_lim) / 2.0
    return area / limit


def _count_equal(a: np.ndarray, value: float, chunk: int = 1 << 24) -> int:
    return sum(int(np.count_nonzero(a[i:i + chunk] == value)) for i in range(0, a.size, chunk))


def _aupro_numpy(maps: np.ndarray, masks: np.ndarray, rows: np.ndarray | None, limit: float,
                 chunk_pixels: int) -> AuproResult:
    n_img, h, w = maps.shape
    blocks = row_blocks(n_img, h * w, chunk_pixels, rows)
    dt = work_dtype_numpy(maps.dtype)

    # 1. anomalous pixels: scores, region ids, weights
    vals, ids, n_regions = [], [], 0
    for b in blocks:
        mb = binarise(masks[b])
        has = np.flatnonzero(mb.reshape(mb.shape[0], -1).any(axis=1))
        if has.size:
            mh = mb[has]
            vals.append(maps[b][has][mh].astype(dt, copy=False))
            blk_ids, n_regions = _region_ids(mh, n_regions)
            ids.append(blk_ids)
    n_anom = sum(v.size for v in vals)
    n_normal = (n_img if rows is None else len(rows)) * h * w - n_anom
    _check_counts(n_anom, n_normal)
    a_vals = np.concatenate(vals)
    region = np.concatenate(ids)
    del vals, ids
    weights = 1.0 / (np.bincount(region, minlength=n_regions)[region] * float(n_regions))
    order = np.argsort(a_vals, kind="stable")
    a_sorted, w_sorted = a_vals[order], weights[order]
    del a_vals, region, weights, order
    if np.isnan(a_sorted[-1]):
        raise ValueError("anomaly maps contain NaN")

    # 2. normal scores; selection of t*
    normals = np.empty(n_normal, dtype=dt)
    filled = 0
    for b in blocks:
        v = maps[b][~binarise(masks[b])]
        normals[filled:filled + v.size] = v
        filled += v.size
    value = weighted_area(normals, a_sorted, w_sorted, limit, chunk_pixels)
    return AuproResult(value, limit, n_regions, n_anom, n_normal)


def weighted_area(normals: np.ndarray, a_sorted: np.ndarray, w_sorted: np.ndarray,
                  limit: float, chunk_pixels: int = DEFAULT_CHUNK_PIXELS) -> float:
    """The normalised area up to FPR ``limit`` of the curve where each normal pixel adds
    ``1/len(normals)`` to FPR and each anomalous pixel (sorted scores ``a_sorted``) its
    weight ``w_sorted`` to the overlap: steps 2–4 of the algorithm above (AUPRO's weights
    ``1/(|region|·K)``; sPRO's saturated ones). ``normals`` is partitioned in place."""
    n_normal = normals.size
    k = _crossing_count(n_normal, limit)
    t: float | None = None
    c_eq = 0
    cand = normals
    if k <= n_normal:
        j = n_normal - k
        normals.partition(j)
        t = normals[j]
        if np.isnan(t):
            raise ValueError("anomaly maps contain NaN")
        cand = normals[j + 1:]  # all scores ≥ t* (those > t* among them)
        c_eq = 1 + _count_equal(cand, t) + _count_equal(normals[:j], t)

    # 3. full steps: candidates > t*, sorted piecewise in place, against the anomalous scores
    n_pieces = max(n_threads(), math.ceil(cand.size / max(chunk_pixels, a_sorted.size)))
    pieces = [p for p in np.array_split(cand, n_pieces) if p.size]

    def piece_sum(p: np.ndarray) -> tuple[float, int]:
        p.sort()
        if np.isnan(p[-1]):
            raise ValueError("anomaly maps contain NaN")
        if t is not None:
            p = p[np.searchsorted(p, t, side="right"):]
        return float(rank_sum(p, a_sorted, w_sorted)), p.size

    with ThreadPoolExecutor(max_workers=n_threads()) as pool:
        parts = list(pool.map(piece_sum, pieces))
    area_full = sum(s for s, _ in parts) / (2.0 * n_normal)
    c_gt = sum(c for _, c in parts)

    # 4. the step at t*, cut at the limit
    p_gt = p_ge = 0.0
    if t is not None:
        p_gt = float(w_sorted[np.searchsorted(a_sorted, t, side="right"):].sum())
        p_ge = float(w_sorted[np.searchsorted(a_sorted, t, side="left"):].sum())
    return _finish(area_full, limit, n_normal, c_gt, c_eq, p_gt, p_ge)


def _lower_bound(values: torch.Tensor, k: int, bins: int = 4096) -> torch.Tensor | None:
    """A value ≤ the k-th largest of ``values`` that keeps few more than k of them, or None.

    A histogram gives the bin holding the k-th largest value; the bound is one bin lower
    (rounding margin) and is verified by counting exactly.
    """
    lo, hi = torch.aminmax(values)
    if not bool(torch.isfinite(lo) & torch.isfinite(hi) & (hi > lo)):
        return None
    hist = torch.histc(values, bins=bins, min=float(lo), max=float(hi))
    from_top = torch.cumsum(hist.flip(0), 0)
    b = int(torch.searchsorted(from_top, torch.tensor([float(k)], device=values.device)))
    bound = lo + (hi - lo) * (max(bins - 1 - b, 1) - 1) / bins
    if int((values >= bound).sum()) < k:  # never expected; stay exact regardless
        return None
    return bound


def _aupro_torch(maps: torch.Tensor, masks: torch.Tensor, rows: np.ndarray | None,
                 limit: float, chunk_pixels: int) -> AuproResult:
    dev = maps.device
    n_img, h, w = maps.shape
    blocks = row_blocks(n_img, h * w, chunk_pixels, rows, dev)
    dt = work_dtype_torch(maps.dtype)

    # 1. anomalous pixels (regions labelled on the CPU)
    vals, ids, n_regions = [], [], 0
    for b in blocks:
        mb = binarise(masks[b])
        has = torch.nonzero(mb.flatten(1).any(dim=1)).flatten()
        if has.numel():
            mh = mb[has]
            vals.append(maps[b][has][mh].to(dt))
            blk_ids, n_regions = _region_ids(mh.cpu().numpy(), n_regions)
            ids.append(blk_ids)
    n_anom = sum(int(v.numel()) for v in vals)
    n_normal = (n_img if rows is None else len(rows)) * h * w - n_anom
    _check_counts(n_anom, n_normal)
    a_vals = torch.cat(vals)
    region_np = np.concatenate(ids)
    del vals, ids
    weights_np = 1.0 / (np.bincount(region_np, minlength=n_regions)[region_np]
                        * float(n_regions))
    weights = torch.from_numpy(weights_np).to(dev)
    a_sorted, order = torch.sort(a_vals)
    w_sorted = weights[order]
    del a_vals, weights, order
    # suffix sums: w_suffix[i] = Σ_{j ≥ i} w_sorted[j]; w_suffix[n_anom] = 0
    w_suffix = torch.zeros(n_anom + 1, dtype=torch.float64, device=dev)
    w_suffix[:n_anom] = torch.flip(torch.cumsum(torch.flip(w_sorted, [0]), 0), [0])

    # 2. normal scores; selection of t*
    normals = torch.empty(n_normal, dtype=dt, device=dev)
    filled = 0
    for b in blocks:
        v = maps[b][~binarise(masks[b])].to(dt)
        normals[filled:filled + v.numel()] = v
        filled += v.numel()
    if bool(torch.isnan(normals).any() | torch.isnan(a_sorted[-1])):
        raise ValueError("anomaly maps contain NaN")
    k = _crossing_count(n_normal, limit)
    t: torch.Tensor | None = None
    c_gt, c_eq = n_normal, 0
    if k <= n_normal:
        # Keep the scores ≥ a lower bound of t* (histogram, then verified by an exact
        # count) and sort those: on a GPU a radix sort is far faster than torch.kthvalue.
        bound = _lower_bound(normals, k)
        if bound is not None:
            normals = normals[normals >= bound]
        normals = torch.sort(normals).values
        t = normals[normals.numel() - k].reshape(1)
        start = int(torch.searchsorted(normals, t, right=True))
        c_eq = start - int(torch.searchsorted(normals, t))
        c_gt = normals.numel() - start
        cand = normals[start:]
    else:
        cand = normals

    # 3. full steps: every candidate normal score searched into the sorted anomalous scores
    s = torch.zeros((), dtype=torch.float64, device=dev)
    step = max(chunk_pixels, 1)
    for i in range(0, cand.numel(), step):
        c = cand[i:i + step]
        s += w_suffix[torch.searchsorted(a_sorted, c, right=True)].sum()
        s += w_suffix[torch.searchsorted(a_sorted, c)].sum()
    area_full = float(s) / (2.0 * n_normal)

    # 4. the step at t*, cut at the limit
    p_gt = p_ge = 0.0
    if t is not None:
        p_gt = float(w_suffix[torch.searchsorted(a_sorted, t, right=True)])
        p_ge = float(w_suffix[torch.searchsorted(a_sorted, t)])
    value = _finish(area_full, limit, n_normal, c_gt, c_eq, p_gt, p_ge)
    return AuproResult(value, limit, n_regions, n_anom, n_normal)
