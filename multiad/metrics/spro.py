"""AUsPRO, the normalised area under the saturated per-region overlap (sPRO) curve.

The localisation metric of MVTec LOCO AD (Bergmann et al., "Beyond Dents and Scratches:
Logical Constraints in Unsupervised Anomaly Detection and Localization", IJCV 130,
947–969, 2022), as MVTec's evaluation script for the dataset (``evaluate_experiment.py``
with ``src/metrics.py`` and ``src/image.py``, version 2.0) computes it, globally over the
evaluated test images:

- regions: every ground-truth mask *file* of every anomalous image is one region ``R_k``
  (one annotated defect; its pixels need not be connected, and regions of one image may
  overlap); ``K`` in all;
- each region has a saturation area ``s_k > 0`` in pixels, capped at ``|R_k|`` (see
  :func:`saturation_area` for the rules of ``defects_config.json``);
- sPRO(t) = (1/K) Σ_k min(|{p ∈ R_k : score(p) ≥ t}| / s_k, 1);
- FPR(t): the fraction of all *defect-free* pixels with score ≥ t, pooled over every
  evaluated image: all pixels of the good images **and** the pixels of anomalous images
  that lie outside every region of their image. This is the official ``FP / (FP + TN)``,
  with FP and TN summed over all images of the set (good ones contribute every pixel,
  anomalous ones the pixels outside the union of their masks);
- the curve runs over every distinct score, descending, from (0, 0); equal scores form
  one step;
- AUsPRO = trapezoid area of sPRO over FPR ∈ [0, fpr_limit] (linear interpolation at the
  limit) divided by ``fpr_limit``; the official headline limit is 0.05.

With ``s_k = |R_k|`` this is the PRO curve of :mod:`multiad.metrics.aupro` except that a
region is a mask file, not a connected component of the union mask.

The official script samples thresholds adaptively (until neighbouring curve points are at
most 0.01 apart) and binarises with ``score > threshold``; the points
``(FPR(>t), sPRO(>t))`` over all real ``t`` are exactly the points above (every distinct
score with ``≥``, plus the origin), so the curve here is the limit of that refinement and
the two agree up to the official sampling error.

Algorithm (exact). The cap makes sPRO non-linear in the counts, but one region's term is a
sum over its pixels in descending score order: the j-th pixel adds
``(min(j/s, 1) − min((j−1)/s, 1)) / K`` — ``1/(s·K)`` for ``j ≤ ⌊s⌋``, the remainder for
``j = ⌊s⌋ + 1`` and nothing after that (within a group of equal scores the order does not
matter: the group enters the curve at one threshold). With these per-pixel weights (a
pixel in two regions counts once in each) sPRO(t) is a weighted count of the pixels with
score ≥ t, and the area is AUPRO's own (``aupro.weighted_area``): select the normal score where FPR
crosses the limit, sum the full trapezoid steps with two ``searchsorted`` passes, cut the
last step at the limit. Inputs are evaluated on the CPU (CUDA tensors are copied).

Resolution. The official evaluation runs at the images' original resolution. When masks
are resized (here to the model's ``size × size``), a saturation threshold given as an
absolute pixel count at the original resolution must be multiplied by the area ratio
``(h·w) / (H·W)`` of evaluated to original pixels; relative thresholds apply to the
region's area as evaluated. :func:`saturation_area` does both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from multiad.metrics._inputs import (
    ArrayLike,
    UndefinedMetricError,
    binarise,
    check_rows,
    to_backend,
    work_dtype_numpy,
)
from multiad.metrics.aupro import weighted_area

#: The official headline integration limit of AUsPRO on MVTec LOCO AD.
DEFAULT_SPRO_FPR_LIMIT = 0.05

RegionsLike = Sequence["ArrayLike | None"]
SaturationLike = Sequence["Sequence[float] | np.ndarray | None"]


@dataclass(frozen=True)
class AusproResult:
    """AUsPRO with the counts it was computed from."""

    auspro: float
    fpr_limit: float
    n_regions: int
    n_images: int
    n_normal: int  # defect-free pixels (the FPR's denominator)


def saturation_area(threshold: float, relative: bool, region_area: int,
                    area_scale: float = 1.0) -> float:
    """Saturation area in pixels of a region of ``region_area`` pixels (as evaluated).

    The rules of MVTec LOCO's ``defects_config.json`` (official ``GroundTruthChannel``):
    ``relative``: ``⌊threshold · region_area⌋`` (threshold a fraction in (0, 1]), at least
    one pixel (the official script would divide by zero below that); absolute: the pixel
    count ``threshold`` given at the original resolution, times ``area_scale`` — the ratio
    ``(h·w) / (H·W)`` of evaluated to original pixels, 1 at the original resolution —
    capped at ``region_area``.
    """
    if region_area < 1:
        raise ValueError(f"region_area must be at least one pixel, got {region_area}")
    if not (math.isfinite(threshold) and threshold > 0):
        raise ValueError(f"saturation threshold must be positive, got {threshold}")
    if not (math.isfinite(area_scale) and area_scale > 0):
        raise ValueError(f"area_scale must be positive, got {area_scale}")
    if relative:
        if threshold > 1:
            raise ValueError(f"a relative saturation threshold must be in (0, 1], got "
                             f"{threshold}")
        return float(max(math.floor(threshold * region_area), 1))
    return float(min(threshold * area_scale, region_area))


def auspro(anomaly_maps: ArrayLike, regions: RegionsLike,
           saturation: SaturationLike | None = None,
           fpr_limit: float = DEFAULT_SPRO_FPR_LIMIT) -> float:
    """AUsPRO up to ``fpr_limit`` (MVTec LOCO definition; see the module docstring).

    ``anomaly_maps``: N×H×W scores (numpy or torch). ``regions``: N entries, each the
    K_i×H×W ground-truth regions of image i (one per mask file; an H×W array is one
    region; ``None`` or K_i = 0 for a good image). ``saturation``: N entries of K_i
    saturation areas in pixels at this resolution (capped at each region's area); ``None``
    (all, or per image) uses the region's area, i.e. plain PRO over mask files.
    """
    return auspro_result(anomaly_maps, regions, saturation, fpr_limit).auspro


def _maps(anomaly_maps: ArrayLike) -> np.ndarray:
    maps = to_backend(anomaly_maps, None)
    if maps.ndim == 4 and maps.shape[1] == 1:
        maps = maps[:, 0]
    if maps.ndim == 2:
        maps = maps[None]
    if maps.ndim != 3:
        raise ValueError(f"expected N×H×W anomaly maps, got shape {tuple(maps.shape)}")
    return maps


def _image_regions(entry: ArrayLike | None, i: int, hw: tuple[int, int]) -> np.ndarray:
    """The K×H×W bool regions of image ``i`` (K may be 0)."""
    if entry is None or (isinstance(entry, list | tuple) and not entry):
        return np.zeros((0, *hw), dtype=bool)
    if isinstance(entry, list | tuple):  # one H×W mask per region
        masks = [binarise(to_backend(m, None)) for m in entry]
        if any(m.shape != masks[0].shape for m in masks):
            raise ValueError(f"the region masks of image {i} differ in shape")
        r = np.stack(masks)
    else:
        r = binarise(to_backend(entry, None))
    if r.ndim == 2:
        r = r[None]
    if r.ndim != 3 or tuple(r.shape[1:]) != hw:
        raise ValueError(f"regions of image {i} have shape {tuple(r.shape)}; expected "
                         f"K×{hw[0]}×{hw[1]} like the anomaly maps")
    return np.asarray(r, dtype=bool)


def _image_saturation(entry: Sequence[float] | np.ndarray | None, i: int,
                      areas: np.ndarray) -> np.ndarray:
    """Saturation areas of image ``i``'s regions, checked and capped at their areas."""
    if entry is None:
        return areas.astype(np.float64)
    s = np.asarray(entry, dtype=np.float64).reshape(-1)
    if s.size != areas.size:
        raise ValueError(f"image {i} has {areas.size} regions but {s.size} saturation areas")
    if s.size and not (np.isfinite(s).all() and (s > 0).all()):
        raise ValueError(f"saturation areas of image {i} must be positive and finite, got "
                         f"{s.tolist()}")
    return np.minimum(s, areas)


def _region_weights(scores: np.ndarray, sat: float) -> tuple[np.ndarray, np.ndarray]:
    """The region's pixels that carry weight (the ⌈s⌉ highest scores) and their weights
    ``min(j/s, 1) − min((j−1)/s, 1)`` (j = 1, 2, … in descending score order)."""
    m = min(scores.size, math.ceil(sat))
    top = np.sort(scores)[::-1][:m]
    j = np.arange(1, m + 1, dtype=np.float64)
    return top, np.minimum(j / sat, 1.0) - np.minimum((j - 1) / sat, 1.0)


def auspro_result(anomaly_maps: ArrayLike, regions: RegionsLike,
                  saturation: SaturationLike | None = None,
                  fpr_limit: float = DEFAULT_SPRO_FPR_LIMIT, *,
                  rows: Sequence[int] | np.ndarray | None = None) -> AusproResult:
    """AUsPRO with counts; ``rows`` optionally selects images along the first axis."""
    if not 0.0 < fpr_limit <= 1.0:
        raise ValueError(f"fpr_limit must be in (0, 1], got {fpr_limit}")
    maps = _maps(anomaly_maps)
    n_img, h, w = maps.shape
    if len(regions) != n_img:
        raise ValueError(f"{n_img} anomaly maps but {len(regions)} region entries")
    if saturation is not None and len(saturation) != n_img:
        raise ValueError(f"{n_img} anomaly maps but {len(saturation)} saturation entries")
    sel = check_rows(rows, n_img)
    idx = range(n_img) if sel is None else sel.tolist()
    dt = work_dtype_numpy(maps.dtype)

    values, weights, normals = [], [], []
    for i in idx:
        m = np.asarray(maps[i], dtype=dt)
        regs = _image_regions(regions[i], i, (h, w))
        areas = regs.sum(axis=(1, 2))
        if (areas == 0).any():
            raise ValueError(f"region {int(np.argmin(areas))} of image {i} is empty; drop "
                             "empty regions before computing sPRO")
        sats = _image_saturation(None if saturation is None else saturation[i], i, areas)
        for r, s in zip(regs, sats, strict=True):
            v, wt = _region_weights(m[r], float(s))
            values.append(v)
            weights.append(wt)
        normals.append(m[~regs.any(axis=0)] if regs.shape[0] else m.reshape(-1))
    n_regions = len(values)
    n_normal = sum(v.size for v in normals)
    if n_regions == 0:
        raise UndefinedMetricError("AUsPRO is undefined: there is no ground-truth region")
    if n_normal == 0:
        raise UndefinedMetricError("AUsPRO is undefined: there is no defect-free pixel")
    a_vals = np.concatenate(values)
    a_w = np.concatenate(weights) / float(n_regions)
    order = np.argsort(a_vals, kind="stable")
    a_sorted, w_sorted = a_vals[order], a_w[order]
    normal = np.concatenate(normals)
    del values, weights, normals, a_vals, a_w, order
    if np.isnan(a_sorted).any() or np.isnan(normal).any():
        raise ValueError("anomaly maps contain NaN")
    value = weighted_area(normal, a_sorted, w_sorted, float(fpr_limit))
    return AusproResult(value, float(fpr_limit), n_regions, len(idx), int(n_normal))


def auspro_report(anomaly_maps: ArrayLike, regions: RegionsLike,
                  saturation: SaturationLike | None, groups: Sequence[str],
                  fpr_limit: float = DEFAULT_SPRO_FPR_LIMIT, *,
                  normal_group: str = "good") -> dict[str, Any]:
    """AUsPRO over all images and per group, as the official LOCO results are reported.

    ``groups``: N names (LOCO: the test folder, ``good`` / ``logical_anomalies`` /
    ``structural_anomalies``). For every group other than ``normal_group`` the AUsPRO is
    computed on that group's images plus all ``normal_group`` images (the official
    ``add_good_images``); ``mean`` is the mean of the group values (officially the mean of
    logical and structural). Undefined values are ``None`` with the reason under
    ``skipped``. Plain Python types only.
    """
    names = [str(g) for g in groups]
    if len(names) != len(regions):
        raise ValueError(f"{len(regions)} region entries but {len(names)} group names")
    normal = [i for i, g in enumerate(names) if g == normal_group]
    out: dict[str, Any] = {"fpr_limit": float(fpr_limit), "auspro": None, "n_regions": 0,
                           "per_group": {}, "mean": None, "skipped": {}}
    try:
        r = auspro_result(anomaly_maps, regions, saturation, fpr_limit)
        out["auspro"], out["n_regions"] = r.auspro, r.n_regions
    except UndefinedMetricError as e:
        out["skipped"]["auspro"] = str(e)
    for g in sorted(set(names) - {normal_group}):
        rows = sorted(normal + [i for i, n in enumerate(names) if n == g])
        try:
            out["per_group"][g] = auspro_result(anomaly_maps, regions, saturation, fpr_limit,
                                                rows=rows).auspro
        except UndefinedMetricError as e:
            out["per_group"][g] = None
            out["skipped"][g] = str(e)
    vals = list(out["per_group"].values())
    if vals and all(v is not None for v in vals):
        out["mean"] = float(np.mean(vals))
    return out


def auspro_per_name(anomaly_maps: ArrayLike, regions: RegionsLike,
                    saturation: SaturationLike | None, region_names: Sequence[Sequence[str]],
                    good: Sequence[int], fpr_limit: float = DEFAULT_SPRO_FPR_LIMIT
                    ) -> dict[str, dict[str, Any]]:
    """AUsPRO per defect name (MVTec LOCO: per ``defect_name`` of ``defects_config.json``):
    for each name, the images whose regions all carry that name plus every good image.
    An image whose regions carry several names enters no name's value (its other
    defect's pixels are neither that defect nor defect-free); ``mixed`` counts them.

    ``region_names``: N entries of K_i names, in the order of each image's regions;
    ``good``: the rows of the good images (LOCO: the ``test/good`` folder — an anomalous
    image whose regions all vanished when resized is not one).
    Returns ``{name: {"auspro": float | None, "images": n, "mixed": m}}``.
    """
    if len(region_names) != len(regions):
        raise ValueError(f"{len(regions)} region entries but {len(region_names)} name lists")
    good = sorted(int(i) for i in good)
    if any(len(region_names[i]) for i in good):
        raise ValueError("a row listed as good has ground-truth regions")
    by_name: dict[str, list[int]] = {}
    mixed: dict[str, int] = {}
    for i, names in enumerate(region_names):
        distinct = sorted(set(names))
        if len(distinct) == 1:
            by_name.setdefault(distinct[0], []).append(i)
        for n in distinct if len(distinct) > 1 else ():
            mixed[n] = mixed.get(n, 0) + 1
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(set(by_name) | set(mixed)):
        rows = sorted(good + by_name.get(name, []))
        try:
            value: float | None = auspro_result(anomaly_maps, regions, saturation, fpr_limit,
                                                rows=rows).auspro
        except UndefinedMetricError:
            value = None
        out[name] = {"auspro": value, "images": len(by_name.get(name, [])),
                     "mixed": mixed.get(name, 0)}
    return out
