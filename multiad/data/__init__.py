"""Datasets: loading every on-disk layout, synthetic sets, checks and model-ready tensors.

Main entry points: :func:`load_dataset`, :func:`preload`, :func:`load_split`, :func:`check_dataset`,
:func:`make_synthetic`.
"""

from .check import CheckReport, check_dataset, check_mask_sizes, format_report
from .errors import DataError
from .expected import Expected, expected_counts
from .image_io import read_image, read_mask
from .mvtec import MVTEC_CATEGORIES
from .mvtec_loco import LOCO_CATEGORIES, LocoData, LocoDefect, load_mvtec_loco, loco_auspro
from .registry import KINDS, load_dataset
from .samples import AnomalyData, Sample
from .split import load_split
from .synthetic import SYNTHETIC_CATEGORIES, make_synthetic
from .tensors import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    LoadedSplit,
    SampleDataset,
    default_cache_dir,
    normalize,
    preload,
)

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "KINDS",
    "LOCO_CATEGORIES",
    "MVTEC_CATEGORIES",
    "SYNTHETIC_CATEGORIES",
    "AnomalyData",
    "CheckReport",
    "DataError",
    "Expected",
    "LoadedSplit",
    "LocoData",
    "LocoDefect",
    "Sample",
    "SampleDataset",
    "check_dataset",
    "check_mask_sizes",
    "default_cache_dir",
    "expected_counts",
    "format_report",
    "load_dataset",
    "load_mvtec_loco",
    "load_split",
    "loco_auspro",
    "make_synthetic",
    "normalize",
    "preload",
    "read_image",
    "read_mask",
]
