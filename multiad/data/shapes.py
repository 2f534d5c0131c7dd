"""Procedural building blocks for the synthetic sets: smooth noise, blobs and strokes.

Every function draws its randomness from the ``numpy.random.Generator`` it is given, so a
seed fixes the output exactly. Alpha maps are float32 in [0, 1] and are *exactly* zero
outside their footprint (a soft edge is renormalised above a small threshold), so the
ground-truth mask ``alpha > 0`` covers precisely the pixels a defect alters.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np
from scipy import ndimage

FOOTPRINT_THRESHOLD = 0.05
Size = int | tuple[int, int]  # a square side, or (height, width)


def hw(size: Size) -> tuple[int, int]:
    """``(height, width)`` of a square side or a pair."""
    if np.ndim(size) == 0:
        return int(size), int(size)  # type: ignore[arg-type]
    return int(size[0]), int(size[1])  # type: ignore[index]


def smoothstep(t: np.ndarray) -> np.ndarray:
    """Cubic smoothstep of ``t`` clipped to [0, 1]."""
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def footprint(alpha: np.ndarray, threshold: float = FOOTPRINT_THRESHOLD) -> np.ndarray:
    """Renormalise ``alpha`` so that everything below ``threshold`` becomes exactly 0."""
    out = np.clip((alpha - threshold) / (1.0 - threshold), 0.0, 1.0)
    return out.astype(np.float32)


@lru_cache(maxsize=64)
def _bspline_matrix(n_out: int, n_grid: int, scale: float) -> np.ndarray:
    """Weights (n_out × n_grid) of cubic B-spline interpolation from a coarse grid."""
    pos = (np.arange(n_out) + 0.5) / scale + 1.5  # grid coordinate of each output pixel
    dist = np.abs(pos[:, None] - np.arange(n_grid)[None, :])
    w = np.where(dist < 1, 2 / 3 - dist ** 2 + dist ** 3 / 2,
                 np.where(dist < 2, (2 - dist) ** 3 / 6, 0.0))
    w = w.astype(np.float32)
    w.flags.writeable = False
    return w


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """Zero-mean, unit-std random field with features of about ``scale`` pixels."""
    h, w = shape
    if scale <= 4:
        field = ndimage.gaussian_filter(rng.standard_normal((h, w), dtype=np.float32),
                                        max(scale / 2, 0.5), mode="wrap")
    else:  # coarse random grid, cubic B-spline upsampling (two small matrix products)
        gh, gw = int(np.ceil(h / scale)) + 4, int(np.ceil(w / scale)) + 4
        coarse = rng.standard_normal((gh, gw), dtype=np.float32)
        field = _bspline_matrix(h, gh, scale) @ coarse @ _bspline_matrix(w, gw, scale).T
    field = field - field.mean()
    return (field / (field.std() + 1e-8)).astype(np.float32)


def grid(size: Size) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates ``(y, x)`` as float32 arrays of shape size×size (or h×w)."""
    h, w = hw(size)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return yy, xx


def blob_alpha(rng: np.random.Generator, size: Size, center: tuple[float, float],
               radius: float, softness: float, irregularity: float = 0.25,
               elongation: float = 1.0) -> np.ndarray:
    """An irregular, soft-edged blob: radius modulated by a few random harmonics."""
    yy, xx = grid(size)
    ang0 = rng.uniform(0, np.pi)
    dy, dx = yy - center[0], xx - center[1]
    u = dx * np.cos(ang0) + dy * np.sin(ang0)
    v = (-dx * np.sin(ang0) + dy * np.cos(ang0)) * elongation
    rho = np.hypot(u, v)
    theta = np.arctan2(v, u)
    r = np.full_like(rho, radius)
    for k in range(2, 6):
        amp = rng.uniform(0, irregularity / k)
        r = r + radius * amp * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    alpha = smoothstep((r - rho) / max(softness, 1e-3) + 0.5)
    return footprint(alpha)


def bezier_points(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, n: int) -> np.ndarray:
    """``n`` points along the quadratic Bézier curve p0→p2 with control point p1."""
    t = np.linspace(0.0, 1.0, n)[:, None]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t ** 2 * p2


def stroke_alpha(size: Size, points: np.ndarray, width: float, softness: float) -> np.ndarray:
    """A soft line of ``width`` pixels through ``points`` (N×2 array of (y, x))."""
    h, w = hw(size)
    hit = np.zeros((h, w), dtype=bool)
    idx = np.round(points).astype(int)
    keep = (idx[:, 0] >= 0) & (idx[:, 0] < h) & (idx[:, 1] >= 0) & (idx[:, 1] < w)
    hit[idx[keep, 0], idx[keep, 1]] = True
    if not hit.any():
        return np.zeros((h, w), dtype=np.float32)
    dist = ndimage.distance_transform_edt(~hit)
    alpha = smoothstep((width / 2.0 - dist) / max(softness, 1e-3) + 0.5)
    return footprint(alpha)


def finish_pair(rng: np.random.Generator, finish: Callable[[np.random.Generator, np.ndarray],
                np.ndarray], clean: np.ndarray, altered: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """``finish`` (lighting, noise) applied to a clean image and its altered copy with the
    same draws, so that the pair differs only where the defect altered it."""
    state = rng.bit_generator.state
    finished_clean = finish(rng, clean)
    rng.bit_generator.state = state
    return finished_clean, finish(rng, altered)


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Float [0, 1] → uint8 with rounding."""
    return np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)


def to_uint16(img: np.ndarray) -> np.ndarray:
    """Float [0, 1] → uint16 (full 16-bit range) with rounding."""
    return np.round(np.clip(img, 0.0, 1.0) * 65535.0).astype(np.uint16)
