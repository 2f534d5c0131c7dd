"""All test-set metrics in one JSON-serialisable dict, overall and per defect type."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from multiad.metrics._inputs import (
    DEFAULT_CHUNK_PIXELS,
    ArrayLike,
    UndefinedMetricError,
    as_images,
    binarise,
    resolve_device,
    to_backend,
)
from multiad.metrics.aupimo import aupimo
from multiad.metrics.aupro import aupro_result
from multiad.metrics.auroc import auroc_result
from multiad.metrics.f1 import f1_max_result
from multiad.metrics.precision_recall import (
    ap_of,
    average_precision,
    f1_max_of,
    precision_recall_counts,
)

#: Keys of one metrics block (the overall dict also has ``per_defect``).
METRIC_KEYS = ("n_images", "n_normal", "n_anomalous", "image_auroc", "image_ap",
               "image_f1_max", "image_f1_threshold", "pixel_auroc", "pixel_ap", "pixel_f1_max",
               "pixel_f1_threshold", "aupro", "aupimo", "mad", "fpr_limit", "n_pixels",
               "n_anomalous_pixels", "n_regions", "skipped")
#: The metrics a block has only with maps and masks (AUPIMO is computed once, apart).
PIXEL_METRICS = ("pixel_auroc", "pixel_ap", "pixel_f1_max", "aupro")
#: The seven metrics the ADer benchmark (arXiv 2406.03262) averages into mAD.
MAD_KEYS = ("image_auroc", "image_ap", "image_f1_max", "pixel_auroc", "pixel_ap",
            "pixel_f1_max", "aupro")


def evaluate_test_set(image_scores: ArrayLike, image_labels: ArrayLike,
                      anomaly_maps: ArrayLike | None = None, masks: ArrayLike | None = None,
                      defects: Sequence[str] | None = None, fpr_limit: float = 0.3, *,
                      device: str | torch.device | None = None,
                      chunk_pixels: int = DEFAULT_CHUNK_PIXELS) -> dict[str, Any]:
    """Image AUROC, AP and F1-max (+ threshold); pixel AUROC, AP and F1-max (+ threshold);
    AUPRO; AUPIMO; their mAD (the mean of :data:`MAD_KEYS`, when all seven are defined);
    and counts.

    ``image_scores``/``image_labels``: N scores and 0/1 labels (1 = anomalous).
    ``anomaly_maps``/``masks``: optional N×H×W maps and ground truth; pixel metrics are
    ``None`` (with the reason under ``skipped``) when either is missing or the masks hold
    no anomalous pixel. AUPIMO (:mod:`multiad.metrics.aupimo`) is one number per anomalous
    image (``aupimo_per_image``, ``None`` for normal images); a block's ``aupimo`` is their
    mean over its anomalous images. ``defects``: optional N defect-type names; ``per_defect`` then
    holds, for each type found among the anomalous images, the same metrics on all normal
    images plus that type's images. ``device`` selects where pixel metrics run (default:
    where the maps are). All values are plain Python floats/ints/str/None.
    """
    scores = np.asarray(to_backend(image_scores, None), dtype=np.float64).reshape(-1)
    labels = binarise(to_backend(image_labels, None)).reshape(-1)
    n = scores.size
    if labels.size != n:
        raise ValueError(f"{n} image scores but {labels.size} labels")
    pix: tuple[Any, Any] | None = None
    why_no_pixels = None
    if anomaly_maps is None:
        why_no_pixels = "no anomaly maps given"
    elif masks is None:
        why_no_pixels = "no ground-truth masks given"
    else:
        dev = resolve_device(anomaly_maps, masks, device=device)
        pix = as_images(to_backend(anomaly_maps, dev), to_backend(masks, dev))
        if pix[0].shape[0] != n:
            raise ValueError(f"{n} image scores but {pix[0].shape[0]} anomaly maps")

    pimo, why_no_pimo = None, why_no_pixels
    if pix is not None:
        try:
            pimo = aupimo(*pix).per_image
        except UndefinedMetricError as e:
            why_no_pimo = str(e)

    def block(rows: np.ndarray | None) -> dict[str, Any]:
        out = _metrics(scores, labels, pix, why_no_pixels, rows, fpr_limit, chunk_pixels)
        if pimo is None:
            out["skipped"]["aupimo"] = str(why_no_pimo)
        else:
            own = pimo if rows is None else pimo[rows]
            own = own[~np.isnan(own)]
            out["aupimo"] = float(own.mean()) if own.size else None
        if all(out[k] is not None for k in MAD_KEYS):
            out["mad"] = float(np.mean([out[k] for k in MAD_KEYS]))
        return out

    result = block(None)
    per_defect: dict[str, dict[str, Any]] = {}
    if defects is not None:
        names = [str(d) for d in defects]
        if len(names) != n:
            raise ValueError(f"{n} image scores but {len(names)} defect names")
        normal = np.flatnonzero(~labels)
        for d in sorted({names[i] for i in np.flatnonzero(labels)}):
            own = np.array([i for i in np.flatnonzero(labels) if names[i] == d], dtype=np.int64)
            rows = np.sort(np.concatenate([normal, own]))
            per_defect[d] = dict(result) if rows.size == n else block(rows)
            per_defect[d]["skipped"] = dict(per_defect[d]["skipped"])
    result["per_defect"] = per_defect
    result["aupimo_per_image"] = None if pimo is None else [
        None if np.isnan(v) else float(v) for v in pimo]
    return result


def _metrics(scores: np.ndarray, labels: np.ndarray, pix: tuple[Any, Any] | None,
             why_no_pixels: str | None, rows: np.ndarray | None, fpr_limit: float,
             chunk_pixels: int) -> dict[str, Any]:
    """One metrics block over the images ``rows`` (all when None)."""
    s = scores if rows is None else scores[rows]
    y = labels if rows is None else labels[rows]
    n_anom = int(np.count_nonzero(y))
    out: dict[str, Any] = {k: None for k in METRIC_KEYS}
    skipped: dict[str, str] = {}
    out.update(n_images=int(s.size), n_normal=int(s.size - n_anom), n_anomalous=n_anom,
               fpr_limit=float(fpr_limit), skipped=skipped)
    try:
        out["image_auroc"] = float(auroc_result(s, y).auroc)
    except UndefinedMetricError as e:
        skipped["image_auroc"] = str(e)
    try:
        out["image_ap"] = average_precision(s, y)
    except UndefinedMetricError as e:
        skipped["image_ap"] = str(e)
    try:
        f1 = f1_max_result(s, y)
        out["image_f1_max"], out["image_f1_threshold"] = f1.f1, f1.threshold
    except UndefinedMetricError as e:
        skipped["image_f1_max"] = str(e)
    if pix is None:
        for k in PIXEL_METRICS:
            skipped[k] = str(why_no_pixels)
        return out
    maps, masks = pix
    out["n_pixels"] = int(s.size * maps.shape[1] * maps.shape[2])
    try:
        pa = auroc_result(maps, masks, chunk_pixels, rows=rows)
    except UndefinedMetricError:
        n_pos = _count_positive(masks, rows)
        why = ("the masks contain no anomalous pixel" if n_pos == 0
               else "the masks contain no normal pixel")
        for k in PIXEL_METRICS:
            skipped[k] = why
        out["n_anomalous_pixels"] = n_pos
        return out
    out["pixel_auroc"] = float(pa.auroc)
    out["n_anomalous_pixels"] = int(pa.n_pos)
    curve = precision_recall_counts(maps, masks, chunk_pixels, rows=rows)  # one pass, two metrics
    pf1 = f1_max_of(curve)
    out["pixel_f1_max"], out["pixel_f1_threshold"] = pf1.f1, pf1.threshold
    out["pixel_ap"] = ap_of(curve)
    ap = aupro_result(maps, masks, fpr_limit, chunk_pixels, rows=rows)
    out["aupro"] = float(ap.aupro)
    out["n_regions"] = int(ap.n_regions)
    return out


def _count_positive(masks: np.ndarray | torch.Tensor, rows: np.ndarray | None) -> int:
    m = masks if rows is None else masks[torch.as_tensor(rows, device=masks.device)
                                         if isinstance(masks, torch.Tensor) else rows]
    return int(binarise(m).sum())
