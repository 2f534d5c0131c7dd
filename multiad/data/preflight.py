"""Checks of a dataset before any training (``run`` / ``train``): masks against their
images, mask levels, tiny images. A mismatch is an error now, not after the last epoch;
odd masks and tiny images are warnings that say how they are read."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from .check import check_mask_sizes
from .image_io import image_size
from .samples import SPLITS, AnomalyData

# below this side an image has no structure left at a backbone's deepest stage (stride 32)
MIN_SIDE = 32


class DataWarning(UserWarning):
    """A dataset that trains, but perhaps not as its author meant."""


def mask_levels(path: str | Path) -> list[int]:
    """The distinct values stored in a mask file (its first channel)."""
    with Image.open(path) as img:
        arr = np.asarray(img.convert("L") if img.mode in ("1", "P") else img)
    if arr.ndim == 3:
        arr = arr[..., 0]
    if arr.dtype == np.uint8:
        return np.flatnonzero(np.bincount(arr.ravel(), minlength=256)).tolist()
    return np.unique(arr).astype(np.int64).tolist()


def _summary(items: list[str], what: str) -> str:
    more = f" (and {len(items) - 1} more)" if len(items) > 1 else ""
    return f"{items[0]}{more}: {what}"


def preflight(data: AnomalyData, splits: Iterable[str] = SPLITS) -> list[str]:
    """Raise :class:`~multiad.data.errors.DataError` when a mask's size differs from its
    image's; warn (:class:`DataWarning`) about masks with more than one non-zero level
    (0/1/7: how they are read is said; one label value, 255 or 1 or a LOCO defect's
    ``pixel_value``, is a binary mask) and images under :data:`MIN_SIDE` pixels a side.
    Returns the warnings' texts."""
    check_mask_sizes(data)
    samples = [s for split in splits for s in data.split(split)]
    odd, tiny = [], []
    for s in samples:
        w, h = image_size(s.image)
        if min(w, h) < MIN_SIDE:
            tiny.append(f"{s.image} ({w}x{h})")
        if s.mask is not None:
            levels = mask_levels(s.mask)
            if len([v for v in levels if v != 0]) > 1:  # one label value is a binary mask
                odd.append(f"{s.mask} (values {levels[:6]}{' …' if len(levels) > 6 else ''})")
    found = []
    if odd:
        found.append(_summary(odd, "several non-zero mask values; every non-zero pixel is "
                                   "read as anomalous, whatever its value"))
    if tiny:
        found.append(_summary(tiny, f"smaller than {MIN_SIDE} pixels a side; it is "
                                    "upsampled to data.image_size and carries little a "
                                    "backbone can see"))
    for text in found:
        warnings.warn(text, DataWarning, stacklevel=2)
    return found
