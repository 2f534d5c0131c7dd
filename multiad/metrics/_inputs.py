"""Input handling shared by the metrics: backend choice, conversion, shapes, chunking.

Two backends compute every pooled metric:

- ``numpy`` (CPU): numpy arrays, and torch tensors that live on the CPU (shared memory,
  no copy).
- ``torch`` (accelerator): used when an input is a CUDA tensor or ``device`` names a CUDA
  device; every step runs with torch operations on that device.

Labels and masks are binarised lazily, chunk by chunk: ``bool`` as is, floating point
``> 0.5``, integers ``> 0``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

Array = np.ndarray | torch.Tensor
ArrayLike = np.ndarray | torch.Tensor | Sequence[float] | Sequence[int] | Sequence[bool]
Block = slice | np.ndarray | torch.Tensor

#: Default number of pixels handled at once by the pooled pixel metrics.
DEFAULT_CHUNK_PIXELS = 1 << 25


class UndefinedMetricError(ValueError):
    """A metric is undefined for these labels (e.g. only one class is present)."""


def n_threads() -> int:
    """Worker threads for the numpy backend (its sorts release the GIL)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus))


def resolve_device(*arrays: Any, device: str | torch.device | None = None
                   ) -> torch.device | None:
    """Return the torch device to compute on, or ``None`` for the numpy (CPU) backend."""
    if device is not None:
        dev = torch.device(device)
        return None if dev.type == "cpu" else dev
    for a in arrays:
        if isinstance(a, torch.Tensor) and a.device.type != "cpu":
            return a.device
    return None


def to_backend(x: ArrayLike, dev: torch.device | None) -> Array:
    """Convert ``x`` to a numpy array (``dev is None``) or a tensor on ``dev`` (no grad)."""
    if dev is None:
        if isinstance(x, torch.Tensor):
            x = x.detach()
            if x.dtype == torch.bfloat16:  # numpy has no bfloat16
                x = x.float()
            return x.cpu().numpy()
        arr = np.asarray(x)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"expected a numeric or boolean array, got dtype {arr.dtype}")
        return arr
    if isinstance(x, torch.Tensor):
        return x.detach().to(dev)
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"expected a numeric or boolean array, got dtype {arr.dtype}")
    with warnings.catch_warnings():  # read-only arrays (memmaps): we never write to them
        warnings.simplefilter("ignore", UserWarning)
        return torch.as_tensor(arr).to(dev)


def work_dtype_numpy(dtype: np.dtype) -> np.dtype:
    """Float dtype in which values are compared exactly (widening only)."""
    if dtype == np.float64 or dtype.kind in "iu":
        return np.dtype(np.float64)
    return np.dtype(np.float32)


def work_dtype_torch(dtype: torch.dtype) -> torch.dtype:
    """Float dtype in which values are compared exactly (widening only)."""
    if dtype == torch.float64 or not (dtype.is_floating_point or dtype == torch.bool):
        return torch.float64
    return torch.float32


def binarise(labels: Array) -> Array:
    """Boolean view of labels/masks: bool as is, floats ``> 0.5``, integers ``> 0``."""
    if isinstance(labels, torch.Tensor):
        if labels.dtype == torch.bool:
            return labels
        return labels > 0.5 if labels.dtype.is_floating_point else labels > 0
    if labels.dtype == np.bool_:
        return labels
    return labels > 0.5 if labels.dtype.kind == "f" else labels > 0


def _squeeze_channel(x: Array) -> Array:
    """Drop a singleton channel axis of an N×1×H×W array."""
    return x[:, 0] if x.ndim == 4 and x.shape[1] == 1 else x


def as_rows(values: Array, labels: Array) -> tuple[Array, Array]:
    """Check matching shapes and view both as 2-D (rows, row length) arrays.

    1-D inputs become (n, 1); N×… inputs become (N, prod(…)); a singleton channel axis of
    an N×1×H×W input is ignored when the other input is N×H×W.
    """
    if tuple(values.shape) != tuple(labels.shape):
        values, labels = _squeeze_channel(values), _squeeze_channel(labels)
    if tuple(values.shape) != tuple(labels.shape):
        raise ValueError(f"scores and labels/masks differ in shape: {tuple(values.shape)} vs "
                         f"{tuple(labels.shape)}")
    if values.ndim == 0:
        raise ValueError("expected arrays, got scalars")
    if values.ndim == 1:
        return values.reshape(-1, 1), labels.reshape(-1, 1)
    return values.reshape(values.shape[0], -1), labels.reshape(labels.shape[0], -1)


def as_images(maps: Array, masks: Array) -> tuple[Array, Array]:
    """Check matching shapes and view both as N×H×W (H×W and N×1×H×W are accepted)."""
    maps, masks = _squeeze_channel(maps), _squeeze_channel(masks)
    if maps.ndim == 2:
        maps = maps[None]
    if masks.ndim == 2:
        masks = masks[None]
    if maps.ndim != 3 or tuple(maps.shape) != tuple(masks.shape):
        raise ValueError(f"expected N×H×W anomaly maps and masks of the same shape, got "
                         f"{tuple(maps.shape)} and {tuple(masks.shape)}")
    return maps, masks


def row_blocks(n_rows: int, row_len: int, chunk_pixels: int, rows: np.ndarray | None,
               dev: torch.device | None = None) -> list[Block]:
    """Split the selected rows (all when ``rows`` is None) into blocks of ≤ chunk_pixels."""
    if chunk_pixels < 1:
        raise ValueError(f"chunk_pixels must be positive, got {chunk_pixels}")
    per = max(1, chunk_pixels // max(row_len, 1))
    if rows is None:
        return [slice(i, min(i + per, n_rows)) for i in range(0, n_rows, per)]
    blocks: list[Block] = [rows[i:i + per] for i in range(0, len(rows), per)]
    if dev is not None:
        blocks = [torch.as_tensor(b, dtype=torch.long, device=dev) for b in blocks]
    return blocks


def check_rows(rows: Sequence[int] | np.ndarray | None, n_rows: int) -> np.ndarray | None:
    """Validate an optional selection of rows (images) as an int64 index array."""
    if rows is None:
        return None
    idx = np.asarray(rows, dtype=np.int64).reshape(-1)
    if idx.size and (idx.min() < 0 or idx.max() >= n_rows):
        raise IndexError(f"row index out of range for {n_rows} rows")
    return idx
