"""Exact anomaly-detection metrics: image/pixel AUROC, AP and F1-max, AUPRO, AUPIMO,
AUsPRO (MVTec LOCO) and test-set reports.

Everything is exact (no binning, sigmoid or clipping) and accepts numpy arrays or torch
tensors; CUDA tensors are evaluated on their GPU. See each module's docstring for the
algorithm.
"""

from typing import Any

from multiad.metrics._inputs import DEFAULT_CHUNK_PIXELS, UndefinedMetricError
from multiad.metrics.aupimo import AupimoResult, aupimo
from multiad.metrics.aupro import AuproResult, aupro, aupro_result, connected_regions
from multiad.metrics.auroc import AurocResult, auroc, auroc_result, pixel_auroc
from multiad.metrics.f1 import F1Result, f1_max, f1_max_result, f1_max_threshold
from multiad.metrics.precision_recall import average_precision, pixel_f1_max_result
from multiad.metrics.report import evaluate_test_set
from multiad.metrics.spro import (
    AusproResult,
    auspro,
    auspro_per_name,
    auspro_report,
    auspro_result,
    saturation_area,
)


def __getattr__(name: str) -> Any:
    """Lazy ``time_pixel_metrics`` (keeps ``python -m multiad.metrics.bench`` warning-free)."""
    if name == "time_pixel_metrics":
        from multiad.metrics.bench import time_pixel_metrics

        return time_pixel_metrics
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_CHUNK_PIXELS",
    "AupimoResult",
    "AuproResult",
    "AurocResult",
    "AusproResult",
    "F1Result",
    "UndefinedMetricError",
    "aupimo",
    "aupro",
    "aupro_result",
    "auroc",
    "auroc_result",
    "auspro",
    "auspro_per_name",
    "auspro_report",
    "auspro_result",
    "average_precision",
    "connected_regions",
    "evaluate_test_set",
    "f1_max",
    "f1_max_result",
    "f1_max_threshold",
    "pixel_auroc",
    "pixel_f1_max_result",
    "saturation_area",
    "time_pixel_metrics",
]
