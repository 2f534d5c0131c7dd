"""Synthetic brain-MRI-like slices: head phantoms with pose/shape jitter, two lesion types.

A normal slice has scalp, skull, a CSF rim, cortex/white-matter texture, a midline fissure
and ventricles whose size depends on a random slice level; a smooth bias field and Rician
noise are added. Defects: ``lesion`` (small bright or dark blob inside the brain) and
``mass`` (larger, ring-enhancing with a darker core).
"""

from __future__ import annotations

import numpy as np

from .shapes import blob_alpha, finish_pair, footprint, grid, smooth_noise, smoothstep

MEDICAL_DEFECTS = ("lesion", "mass")


class _Head:
    """Geometry of one phantom: elliptical radius ``rho`` (1 = outer scalp) and axes."""

    def __init__(self, rng: np.random.Generator, size: int) -> None:
        yy, xx = grid(size)
        self.size = size
        self.cy, self.cx = size / 2 + rng.normal(0, 0.02 * size, 2)
        self.a = 0.37 * size * (1 + rng.normal(0, 0.04))
        self.b = 0.45 * size * (1 + rng.normal(0, 0.04))
        self.rot = rng.normal(0, 0.08)
        dy, dx = yy - self.cy, xx - self.cx
        self.u = dx * np.cos(self.rot) + dy * np.sin(self.rot)
        self.v = -dx * np.sin(self.rot) + dy * np.cos(self.rot)
        wobble = 1 + 0.02 * smooth_noise(rng, (size, size), size / 4)
        self.rho = np.hypot(self.u / self.a, self.v / self.b) * wobble
        self.edge = 1.2 / self.a  # soft boundary width in rho units

    def inside(self, r: float) -> np.ndarray:
        """Soft indicator of ``rho < r``."""
        return smoothstep((r - self.rho) / self.edge + 0.5)

    def brain_mask(self) -> np.ndarray:
        """Hard brain region (where lesions may appear)."""
        return self.rho < 0.83


def _ventricles(rng: np.random.Generator, head: _Head) -> np.ndarray:
    if rng.random() < 0.2:  # high slices: no ventricles
        return np.zeros_like(head.rho)
    scale = rng.uniform(0.6, 1.4)
    out = np.zeros_like(head.rho)
    for side in (-1.0, 1.0):
        off = side * head.a * rng.uniform(0.07, 0.11)
        tilt = side * rng.uniform(0.15, 0.35)
        du, dv = head.u - off, head.v + head.b * rng.uniform(0.0, 0.08)
        pu = du * np.cos(tilt) + dv * np.sin(tilt)
        pv = -du * np.sin(tilt) + dv * np.cos(tilt)
        r = np.hypot(pu / (head.a * 0.07 * scale), pv / (head.b * 0.22 * scale))
        out = np.maximum(out, smoothstep((1.0 - r) * 6 + 0.5))
    return out


def medical_normal(rng: np.random.Generator, size: int) -> tuple[np.ndarray, _Head]:
    """A defect-free slice (float32 size×size in [0, 1]) and its geometry."""
    head = _Head(rng, size)
    scalp = head.inside(1.0)
    skull = head.inside(0.955)
    csf = head.inside(0.88)
    brain = head.inside(0.85)
    img = 0.35 * scalp
    img = img * (1 - skull) + 0.85 * skull
    img = img * (1 - csf) + 0.12 * csf
    wm = 1 / (1 + np.exp(-((0.7 - head.rho) * 14 + 1.4 * smooth_noise(rng, (size, size),
                                                                      size / 28))))
    tissue = 0.36 + 0.2 * wm + 0.025 * smooth_noise(rng, (size, size), 2.0)
    tissue = tissue - 0.18 * np.exp(-(head.u / 1.3) ** 2) * (np.abs(head.v) < 0.8 * head.b)
    vent = _ventricles(rng, head)
    tissue = tissue * (1 - vent) + 0.1 * vent
    img = img * (1 - brain) + tissue * brain
    return img.astype(np.float32), head


def _finish(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Bias field and Rician noise (applied identically to clean and defective images)."""
    size = img.shape[0]
    bias = 1 + 0.08 * smooth_noise(rng, (size, size), size / 3)
    sigma = rng.uniform(0.012, 0.025)
    n1 = sigma * rng.standard_normal(img.shape)
    n2 = sigma * rng.standard_normal(img.shape)
    return np.clip(np.sqrt((img * bias + n1) ** 2 + n2 ** 2), 0, 1).astype(np.float32)


def _lesion_centre(rng: np.random.Generator, head: _Head, max_rho: float) -> tuple[float, float]:
    for _ in range(100):
        r, t = np.sqrt(rng.uniform(0, 1)) * max_rho, rng.uniform(0, 2 * np.pi)
        u, v = r * head.a * np.cos(t), r * head.b * np.sin(t)
        y = head.cy + u * np.sin(head.rot) + v * np.cos(head.rot)
        x = head.cx + u * np.cos(head.rot) - v * np.sin(head.rot)
        if 0 <= y < head.size and 0 <= x < head.size:
            return float(y), float(x)
    return head.cy, head.cx


def _lesion(rng: np.random.Generator, img: np.ndarray, head: _Head):
    size = img.shape[0]
    radius = max(2.5, rng.uniform(0.035, 0.07) * size)
    alpha = blob_alpha(rng, size, _lesion_centre(rng, head, 0.6), radius,
                       softness=max(1.0, 0.4 * radius), irregularity=0.35)
    alpha = alpha * head.brain_mask() * (0.85 + 0.15 * smooth_noise(rng, (size, size), 3))
    alpha = np.clip(alpha, 0, 1)
    target = rng.uniform(0.72, 0.9) if rng.random() < 0.75 else rng.uniform(0.08, 0.18)
    return img + alpha * (target - img), alpha


def _mass(rng: np.random.Generator, img: np.ndarray, head: _Head):
    size = img.shape[0]
    radius = max(4.0, rng.uniform(0.08, 0.13) * size)
    centre = _lesion_centre(rng, head, 0.45)
    outer = blob_alpha(rng, size, centre, radius, softness=max(1.0, 0.25 * radius),
                       irregularity=0.3)
    core = blob_alpha(rng, size, centre, 0.55 * radius, softness=max(1.0, 0.3 * radius),
                      irregularity=0.3)
    oedema = blob_alpha(rng, size, centre, 1.45 * radius, softness=0.6 * radius,
                        irregularity=0.4)
    out = img + 0.35 * oedema * (0.62 - img)
    out = out + outer * (rng.uniform(0.7, 0.88) - out)
    out = out + core * (rng.uniform(0.25, 0.4) - out)
    alpha = np.maximum(footprint(0.35 * oedema, 0.02), outer) * head.brain_mask()
    out = img + (alpha > 0) * (out - img)
    return out, alpha


_DEFECTS = {"lesion": _lesion, "mass": _mass}


def render_medical(rng: np.random.Generator, size: int, defect: str | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(clean, image, mask)``: float32 H×W slices and bool mask of altered pixels."""
    base, head = medical_normal(rng, size)
    if defect is None or defect == "good":
        clean = _finish(rng, base)
        return clean, clean, np.zeros((size, size), dtype=bool)
    if defect not in _DEFECTS:
        raise ValueError(f"unknown medical defect {defect!r}; expected {MEDICAL_DEFECTS}")
    altered, alpha = _DEFECTS[defect](rng, base, head)
    clean, image = finish_pair(rng, _finish, base, altered.astype(np.float32))
    return clean, image, alpha > 0
