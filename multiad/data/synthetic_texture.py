"""Synthetic industrial texture: a woven fabric with real normal variation, three defects.

Normal images vary in thread period, orientation, phase, per-thread brightness, colour,
grain and illumination. Defects: ``scratch`` (thin bright or dark curved line), ``hole``
(dark irregular blob) and ``stain`` (soft-edged colour tint that keeps the weave visible).
"""

from __future__ import annotations

import numpy as np

from .shapes import bezier_points, blob_alpha, smooth_noise, stroke_alpha

TEXTURE_DEFECTS = ("scratch", "hole", "stain")
_BASE_COLOUR = np.array([0.62, 0.50, 0.36], dtype=np.float32)


def texture_normal(rng: np.random.Generator, size: int) -> np.ndarray:
    """A defect-free woven texture, float32 size×size×3 in [0, 1]."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    period = size / rng.uniform(14.0, 17.0)
    theta = rng.normal(0.0, 0.035)
    u = (xx * np.cos(theta) + yy * np.sin(theta)) / period + rng.uniform(0, 2)
    v = (-xx * np.sin(theta) + yy * np.cos(theta)) / period + rng.uniform(0, 2)
    iu, iv = np.floor(u).astype(np.int64), np.floor(v).astype(np.int64)
    fu, fv = u - iu, v - iv
    over = (iu + iv) % 2 == 0
    warp = np.sqrt(np.sin(np.pi * fu)) * (0.82 + 0.18 * np.sin(np.pi * fv))
    weft = np.sqrt(np.sin(np.pi * fv)) * (0.82 + 0.18 * np.sin(np.pi * fu))
    gains = 1.0 + rng.normal(0.0, 0.05, size=64).astype(np.float32)
    intensity = np.where(over, warp * gains[iu % 64], weft * gains[iv % 64])
    colour = _BASE_COLOUR * (1.0 + rng.normal(0.0, 0.025, 3)).astype(np.float32)
    weft_colour = colour * np.float32(rng.uniform(0.85, 0.95))
    rgb = np.where(over[..., None], colour, weft_colour) * (0.45 + 0.55 * intensity[..., None])
    grain = 0.035 * smooth_noise(rng, (size, size), 1.5)
    light = 0.05 * smooth_noise(rng, (size, size), size / 3.0)
    rgb = rgb + (grain + light)[..., None]
    return np.clip(rgb, 0.0, 1.0).astype(np.float32)


def _scratch(rng: np.random.Generator, img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    size = img.shape[0]
    length = rng.uniform(0.25, 0.55) * size
    p0 = rng.uniform(0.15, 0.85, 2) * size
    ang = rng.uniform(0, 2 * np.pi)
    p2 = p0 + length * np.array([np.sin(ang), np.cos(ang)])
    bend = rng.uniform(-0.3, 0.3) * length
    p1 = (p0 + p2) / 2 + bend * np.array([np.cos(ang), -np.sin(ang)])
    width = max(1.2, rng.uniform(1.2, 2.4) * size / 256.0)
    alpha = stroke_alpha(size, bezier_points(p0, p1, p2, int(length * 3) + 8), width, 0.8)
    strength = rng.uniform(0.45, 0.7)
    target = 0.95 if rng.random() < 0.5 else 0.08
    out = img + (strength * alpha)[..., None] * (target - img)
    return out, alpha


def _hole(rng: np.random.Generator, img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    size = img.shape[0]
    radius = max(2.5, rng.uniform(0.03, 0.06) * size)
    centre = tuple(rng.uniform(0.12, 0.88, 2) * size)
    alpha = blob_alpha(rng, size, centre, radius, softness=max(1.0, radius * 0.3),
                       irregularity=0.35, elongation=rng.uniform(0.8, 1.4))
    depth = rng.uniform(0.6, 0.85)
    out = img * (1.0 - depth * alpha)[..., None]
    return out, alpha


def _stain(rng: np.random.Generator, img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    size = img.shape[0]
    radius = max(4.0, rng.uniform(0.07, 0.13) * size)
    centre = tuple(rng.uniform(0.15, 0.85, 2) * size)
    alpha = blob_alpha(rng, size, centre, radius, softness=radius * 0.6, irregularity=0.4)
    tint = rng.uniform(0.55, 1.25, 3)
    tint[rng.integers(3)] = rng.choice([0.5, 1.35])  # at least one channel clearly shifted
    strength = rng.uniform(0.6, 0.95)
    gain = 1.0 + (strength * alpha)[..., None] * (tint.astype(np.float32) - 1.0)
    return img * gain, alpha


_DEFECTS = {"scratch": _scratch, "hole": _hole, "stain": _stain}


def render_texture(rng: np.random.Generator, size: int, defect: str | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(clean, image, mask)``: float32 H×W×3 pair and bool mask of altered pixels."""
    clean = texture_normal(rng, size)
    if defect is None or defect == "good":
        return clean, clean, np.zeros((size, size), dtype=bool)
    if defect not in _DEFECTS:
        raise ValueError(f"unknown texture defect {defect!r}; expected {TEXTURE_DEFECTS}")
    image, alpha = _DEFECTS[defect](rng, clean)
    return clean, np.clip(image, 0.0, 1.0).astype(np.float32), alpha > 0
