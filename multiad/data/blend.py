"""Natural-patch blending: random soft shapes and random crops of real images, blended.

Shared by the real-texture set (:mod:`.synthetic_realtex`) and the anomalies pasted into
held-out normal images (:mod:`.pasted_anomalies`). Every shape is an alpha map, float32 in
[0, 1] and exactly zero outside its footprint (:func:`.shapes.footprint`), so the mask
``alpha > 0`` holds precisely the pixels :func:`blend` changes. Randomness comes only from
the ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from .shapes import Size, bezier_points, blob_alpha, footprint, grid, hw, smoothstep, stroke_alpha

SHAPES = ("blob", "scratch", "patch")
EDGE = 0.25  # a blended shape's soft edge is cut where its alpha falls below this


def _centre(rng: np.random.Generator, size: Size, margin: float) -> tuple[float, float]:
    h, w = hw(size)
    return float(rng.uniform(margin, 1 - margin) * h), float(rng.uniform(margin, 1 - margin) * w)


def blob(rng: np.random.Generator, size: Size, radius: float, softness: float,
         irregularity: float = 0.4, elongation: float = 1.0, margin: float = 0.12
         ) -> np.ndarray:
    """An irregular soft blob at a random position (its centre ``margin`` from the edges)."""
    centre = _centre(rng, size, margin)
    alpha = blob_alpha(rng, size, centre, radius, softness, irregularity, elongation)
    return footprint(alpha, EDGE)


def scratch(rng: np.random.Generator, size: Size, length: float, width: float,
            bend: float = 0.3, margin: float = 0.2) -> np.ndarray:
    """A thin curved stroke (quadratic Bézier) of ``length`` and ``width`` pixels whose
    middle lies at a random position."""
    mid = np.array(_centre(rng, size, margin))
    ang = rng.uniform(0, 2 * np.pi)
    direction = np.array([np.sin(ang), np.cos(ang)])
    p0, p2 = mid - length / 2 * direction, mid + length / 2 * direction
    p1 = mid + rng.uniform(-bend, bend) * length * np.array([direction[1], -direction[0]])
    points = bezier_points(p0, p1, p2, int(length * 3) + 8)
    return footprint(stroke_alpha(size, points, width, 0.8), EDGE)


def patch(rng: np.random.Generator, size: Size, height: float, width: float,
          softness: float = 1.5, margin: float = 0.12) -> np.ndarray:
    """A rotated rectangle of ``height`` × ``width`` pixels at a random position."""
    cy, cx = _centre(rng, size, margin)
    yy, xx = grid(size)
    ang = rng.uniform(0, np.pi)
    u = (xx - cx) * np.cos(ang) + (yy - cy) * np.sin(ang)
    v = -(xx - cx) * np.sin(ang) + (yy - cy) * np.cos(ang)
    soft = max(softness, 1e-3)
    alpha = (smoothstep((width / 2 - np.abs(u)) / soft + 0.5)
             * smoothstep((height / 2 - np.abs(v)) / soft + 0.5))
    return footprint(alpha, EDGE)


def dihedral(img: np.ndarray, k: int) -> np.ndarray:
    """One of the 8 flips/90° rotations of ``img`` (H×W or H×W×C), ``k`` in 0..7."""
    out = np.rot90(img, k % 4, axes=(0, 1))
    return np.ascontiguousarray(out.swapaxes(0, 1) if k >= 4 else out)


def resize(img: np.ndarray, out_hw: tuple[int, int],
           box: tuple[float, float, float, float] | None = None) -> np.ndarray:
    """Bilinear (antialiased when shrinking) resize of float32 ``img``, or of its
    ``box`` = (left, top, right, bottom), to ``out_hw``; per channel."""
    h, w = out_hw
    if img.ndim == 3:
        return np.stack([resize(img[..., c], out_hw, box) for c in range(img.shape[2])], -1)
    pil = Image.fromarray(np.ascontiguousarray(img, dtype=np.float32), mode="F")
    return np.asarray(pil.resize((w, h), Image.Resampling.BILINEAR, box=box),
                      dtype=np.float32)


def crop(rng: np.random.Generator, img: np.ndarray, out_hw: tuple[int, int],
         zoom: float) -> np.ndarray:
    """A random crop of ``img`` after a random flip/rotation, ``zoom`` source pixels per
    output pixel (less where the image is too small), resized to ``out_hw``."""
    img = dihedral(img, int(rng.integers(8)))
    H, W = img.shape[:2]
    h, w = out_hw
    zoom = min(zoom, H / h, W / w)
    bh, bw = h * zoom, w * zoom
    top, left = rng.uniform(0, H - bh), rng.uniform(0, W - bw)
    return resize(img, out_hw, (left, top, left + bw, top + bh))


def scraped(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """A much brighter (scraped surface) or much darker (groove in shadow) version of
    ``img``, even odds: a scratch's pixels."""
    if rng.random() < 0.5:
        return 1.0 - (1.0 - img) * rng.uniform(0.15, 0.4)
    return img * rng.uniform(0.2, 0.45)


def blend(base: np.ndarray, source: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``base`` moved towards ``source`` by ``weight`` (H×W, broadcast over channels):
    exactly ``base`` where the weight is 0."""
    if base.ndim == 3:
        weight = weight[..., None]
    return (base + weight * (source - base)).astype(np.float32)
