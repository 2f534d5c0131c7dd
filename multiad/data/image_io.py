"""Decoding images and masks from disk into numpy arrays, with explicit mode handling."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import DataError

_READ_ERRORS = (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
_FIX = ("Re-download or re-extract the dataset (an interrupted copy leaves truncated files), "
        "or delete the file if it should not be part of the dataset.")


def _open_loaded(path: str | os.PathLike[str]) -> Image.Image:
    """Open and fully decode ``path``; any failure becomes a :class:`DataError`."""
    try:
        with Image.open(path) as img:
            img.load()
            return img.convert("RGBA") if img.mode in ("P", "PA") else img.copy()
    except Image.DecompressionBombError as exc:
        raise DataError(
            f"Image file {path} is larger than Pillow's safety limit ({exc}). Such a size is "
            "either a decompression bomb or a very large scan: downscale it (e.g. to 4096 "
            "pixels a side) or leave it out of the dataset.") from exc
    except _READ_ERRORS as exc:
        raise DataError(f"Cannot read image file {path}: {exc}. {_FIX}") from exc


def _int_to_unit(arr: np.ndarray, path: str | os.PathLike[str]) -> np.ndarray:
    """Scale a 16-bit (or 16-bit-valued 32-bit) integer array to [0, 1] by 65535."""
    if arr.size and (arr.min() < 0 or arr.max() > 65535):
        raise DataError(f"Image {path} holds 32-bit integer values outside 0..65535; "
                        "convert it to an 8- or 16-bit PNG.")
    return arr.astype(np.float32) / np.float32(65535.0)


def _float_to_unit(arr: np.ndarray) -> np.ndarray:
    """Floating-point images: kept as-is when in [0, 1], else scaled by the 8/16-bit range."""
    peak = float(np.nanmax(arr)) if arr.size else 0.0
    arr = np.nan_to_num(arr.astype(np.float32))
    if peak <= 1.0:
        return arr
    return arr / np.float32(255.0 if peak <= 255.0 else 65535.0)


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image as float32 H×W×3 in [0, 1].

    Grayscale is replicated to three channels; alpha is dropped (the colour channels are
    kept as stored); palette images go through their palette; 16-bit images are scaled by
    65535 (never clipped to 8 bits).
    """
    img = _open_loaded(path)
    mode = img.mode
    if mode in _SIXTEEN_BIT_MODES or mode == "I":
        grey = _int_to_unit(np.asarray(img), path)
    elif mode == "F":
        grey = _float_to_unit(np.asarray(img))
    elif mode in ("L", "LA", "La", "1"):
        grey = np.asarray(img.convert("L") if mode == "1" else img.getchannel(0),
                          dtype=np.float32) / np.float32(255.0)
    else:
        rgb = np.asarray(img.convert("RGB"), dtype=np.float32) / np.float32(255.0)
        return np.ascontiguousarray(rgb)
    return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))


def read_mask(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a ground-truth mask as bool H×W: a pixel is anomalous when any channel is > 0.

    Multi-level masks (e.g. BraTS labels 1/2/4) stay positive at every non-zero level; an
    alpha channel is ignored.
    """
    img = _open_loaded(path)
    arr = np.asarray(img)
    if img.mode in ("RGBA", "RGBa", "LA", "La"):
        arr = arr[..., :-1]
    elif img.mode not in ("L", "1", "I", "F", "RGB") and img.mode not in _SIXTEEN_BIT_MODES:
        arr = np.asarray(img.convert("RGB"))
    out = arr > 0
    if out.ndim == 3:
        out = out.any(axis=2)
    return np.ascontiguousarray(out)


def image_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """Return ``(width, height)`` from the file header without decoding the pixels."""
    try:
        with Image.open(path) as img:
            return img.size
    except _READ_ERRORS as exc:
        raise DataError(f"Cannot read image file {path}: {exc}. {_FIX}") from exc


def decoded_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """``(width, height)`` after decoding every pixel: a truncated file whose header is
    intact fails here (as it would in training), not only in :func:`image_size`."""
    return _open_loaded(path).size


def check_same_size(image: np.ndarray, mask: np.ndarray, image_path: str | Path,
                    mask_path: str | Path) -> None:
    """Raise :class:`DataError` when a mask's H×W differs from its image's."""
    if image.shape[:2] != mask.shape[:2]:
        raise DataError(
            f"Mask {mask_path} is {mask.shape[1]}x{mask.shape[0]} but its image {image_path} "
            f"is {image.shape[1]}x{image.shape[0]} (width x height). The pair does not belong "
            "together or one of them was resized; fix or remove the pair.")
