"""A realistic embedded set: crops of one real photographed texture, defects blended in
from other real photographs (all bundled with scikit-image, offline).

Normal images: a random crop of the 512×512 grey photograph (its side 45–60 % of the
photograph's, so the grain's scale varies by ±15 %), one of the 8 flips/90° rotations,
a global gain and offset, a smooth illumination field and sensor noise. Defects, each
blended (:mod:`.blend`) before illumination and noise, so they share them:

- ``scratch``: a thin curved stroke along which the surface is much darker or brighter;
- ``stain``: a soft-edged irregular blob through which another photograph shows, darker,
  at partial opacity (a liquid or print stain that keeps the grain visible);
- ``missing``: a hard-edged irregular region where the material is replaced by a darker
  patch of a *different* photographed texture (the layer underneath showing through).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .blend import blend, blob, crop, scraped, scratch
from .photographs import SCENES, TEXTURES, grey, photograph
from .shapes import finish_pair, smooth_noise

REALTEX_DEFECTS = ("scratch", "stain", "missing")
# category → the photographed texture its normal images are cut from
REALTEX_CATEGORIES = {"realtex": "gravel", "realtex_brick": "brick", "realtex_grass": "grass"}


def realtex_normal(rng: np.random.Generator, size: int, texture: str) -> np.ndarray:
    """A defect-free crop of ``texture``, float32 size×size in [0, 1] (before lighting)."""
    photo = photograph(texture)
    zoom = rng.uniform(0.45, 0.6) * min(photo.shape) / size
    return crop(rng, photo, (size, size), zoom)


def _finish(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Gain, offset, a smooth illumination field and sensor noise."""
    size = img.shape[0]
    gain = 1.0 + rng.normal(0.0, 0.04) + 0.05 * smooth_noise(rng, (size, size), size / 2)
    offset = rng.normal(0.0, 0.015)
    noise = 0.008 * rng.standard_normal((size, size), dtype=np.float32)
    return np.clip(img * gain + offset + noise, 0.0, 1.0).astype(np.float32)


def _scratch(rng: np.random.Generator, img: np.ndarray, texture: str
             ) -> tuple[np.ndarray, np.ndarray]:
    size = img.shape[0]
    width = max(1.2, rng.uniform(1.8, 4.0) * size / 256)
    alpha = scratch(rng, size, rng.uniform(0.3, 0.6) * size, width)
    return scraped(rng, img), alpha * rng.uniform(0.75, 1.0)


def _stain(rng: np.random.Generator, img: np.ndarray, texture: str
           ) -> tuple[np.ndarray, np.ndarray]:
    size = img.shape[0]
    radius = rng.uniform(0.07, 0.14) * size
    alpha = blob(rng, size, radius, softness=0.5 * radius, irregularity=0.45,
                 elongation=rng.uniform(0.7, 1.5))
    donor = grey(photograph(SCENES[rng.integers(len(SCENES))]))
    source = crop(rng, donor, (size, size), rng.uniform(0.6, 1.5) * 256 / size)
    return source * rng.uniform(0.35, 0.7), alpha * rng.uniform(0.6, 0.9)


def _missing(rng: np.random.Generator, img: np.ndarray, texture: str
             ) -> tuple[np.ndarray, np.ndarray]:
    size = img.shape[0]
    radius = rng.uniform(0.055, 0.11) * size
    alpha = blob(rng, size, radius, softness=max(1.0, 1.5 * size / 256), irregularity=0.5,
                 elongation=rng.uniform(0.7, 1.6))
    if rng.random() < 0.5:  # another photographed material underneath
        others = [t for t in TEXTURES if t != texture]
        donor = photograph(others[rng.integers(len(others))])
    else:  # a smooth, out-of-focus surface deeper down
        donor = ndimage.gaussian_filter(grey(photograph(SCENES[rng.integers(len(SCENES))])),
                                        rng.uniform(2.0, 5.0))
    source = crop(rng, donor, (size, size), rng.uniform(0.8, 1.2) * 256 / size)
    # the rim's shadow: darkest at the edge of the hole, fading inwards over a few pixels
    depth = ndimage.distance_transform_edt(alpha > 0)
    shade = 1.0 - 0.45 * np.exp(-depth / max(1.5, 4.0 * size / 256))
    return source * shade * rng.uniform(0.45, 0.8), alpha


_DEFECTS = {"scratch": _scratch, "stain": _stain, "missing": _missing}


def render_realtex(rng: np.random.Generator, size: int, defect: str | None = None,
                   texture: str = "gravel") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(clean, image, mask)``: float32 H×W grey pair and bool mask of altered pixels."""
    base = realtex_normal(rng, size, texture)
    if defect is None or defect == "good":
        clean = _finish(rng, base)
        return clean, clean, np.zeros((size, size), dtype=bool)
    if defect not in _DEFECTS:
        raise ValueError(f"unknown realtex defect {defect!r}; expected {REALTEX_DEFECTS}")
    source, weight = _DEFECTS[defect](rng, base, texture)
    altered = blend(base, source, weight)
    clean, image = finish_pair(rng, _finish, base, altered)
    return clean, image, weight > 0
