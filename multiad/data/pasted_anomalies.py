"""Synthetic anomalies pasted into normal images, for a validation that needs no test labels.

:func:`paste_anomalies` puts one anomaly into every image of a batch by natural-patch
blending (in the spirit of CutPaste, NSA and DRAEM's natural-image anomalies), with the
routines of :mod:`.blend` that also make the real-texture set's defects:

- shape: a soft irregular ``blob``, a thin curved ``scratch`` or a rotated rectangular
  ``patch`` in turn (image ``i`` gets shape ``(seed + i) mod 3``), at a random position
  and size;
- source: a random crop (flipped/rotated, rescaled) of another image of the batch (of the
  image itself when the batch has one), or of a photograph bundled with scikit-image
  (offline); a scratch makes it much darker or brighter;
- opacity: 0.5–1 (a scratch 0.75–1).

Grey images (three equal channels) get grey sources, so colour never gives an anomaly
away. Each image's draws come from a generator seeded by ``(seed, index)``.
"""

from __future__ import annotations

import numpy as np
import torch

from .blend import SHAPES, blend, blob, crop, patch, scraped, scratch
from .photographs import SCENES, TEXTURES, as_channels, photograph

MIN_SIDE = 32
_PHOTOS = TEXTURES + SCENES


def _shape(rng: np.random.Generator, kind: str, hw: tuple[int, int]) -> np.ndarray:
    side = min(hw)
    if kind == "blob":
        r = rng.uniform(0.04, 0.12) * side
        return blob(rng, hw, r, softness=rng.uniform(0.1, 0.5) * r, irregularity=0.45,
                    elongation=rng.uniform(0.6, 1.6))
    if kind == "scratch":
        return scratch(rng, hw, rng.uniform(0.2, 0.5) * side,
                       max(1.2, rng.uniform(1.5, 4.0) * side / 256))
    return patch(rng, hw, rng.uniform(0.06, 0.22) * side, rng.uniform(0.06, 0.22) * side,
                 softness=rng.uniform(0.5, 3.0))


def _source(rng: np.random.Generator, batch: np.ndarray, index: int, channels: int
            ) -> np.ndarray:
    """A crop of another batch image (or this one) or of a bundled photograph."""
    h, w = batch.shape[1:3]
    if rng.random() < 0.5:
        n = len(batch)
        j = index if n == 1 else (index + 1 + int(rng.integers(n - 1))) % n
        donor = batch[j] if channels == 3 else batch[j, :, :, 0]
        src = crop(rng, donor, (h, w), rng.uniform(0.6, 1.0))
    else:
        donor = as_channels(photograph(_PHOTOS[rng.integers(len(_PHOTOS))]), channels)
        src = crop(rng, donor, (h, w), rng.uniform(0.5, 1.5) * 256 / min(h, w))
    return src if src.ndim == 3 else np.repeat(src[:, :, None], 3, axis=2)


def _paste_one(rng: np.random.Generator, batch: np.ndarray, index: int, kind: str
               ) -> tuple[np.ndarray, np.ndarray]:
    img = batch[index]
    grey_image = bool((img == img[..., :1]).all())
    alpha = _shape(rng, kind, img.shape[:2])
    source = _source(rng, batch, index, 1 if grey_image else 3)
    if kind == "scratch":
        return blend(img, scraped(rng, source), alpha * rng.uniform(0.75, 1.0)), alpha > 0
    return blend(img, source, alpha * rng.uniform(0.5, 1.0)), alpha > 0


def paste_anomalies(images_u8: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One pasted anomaly in every image of ``images_u8`` (N×3×H×W uint8, H, W ≥ 32).

    Returns ``(images, masks)``: a new N×3×H×W uint8 tensor, changed only inside the
    masks, and the N×H×W bool masks (the blended footprints). The same images and seed
    give the same result; image ``i`` draws from a generator seeded by ``(seed, i)``.
    """
    if images_u8.dtype != torch.uint8 or images_u8.ndim != 4 or images_u8.shape[1] != 3:
        raise ValueError(f"paste_anomalies needs an N×3×H×W uint8 tensor, got "
                         f"{tuple(images_u8.shape)} {images_u8.dtype}")
    if min(images_u8.shape[2:]) < MIN_SIDE:
        raise ValueError(f"paste_anomalies needs images of at least {MIN_SIDE}×{MIN_SIDE}, "
                         f"got {tuple(images_u8.shape[2:])}")
    original = images_u8.detach().cpu().permute(0, 2, 3, 1).numpy()
    batch = original.astype(np.float32) / np.float32(255.0)
    out = original.copy()
    masks = np.zeros(original.shape[:3], dtype=bool)
    for i in range(len(batch)):
        rng = np.random.default_rng([int(seed) % 2**63, i])
        pasted, mask = _paste_one(rng, batch, i, SHAPES[(int(seed) + i) % len(SHAPES)])
        new = np.round(np.clip(pasted, 0.0, 1.0) * 255.0).astype(np.uint8)
        out[i][mask] = new[mask]
        masks[i] = mask
    images = torch.from_numpy(out).permute(0, 3, 1, 2).contiguous().to(images_u8.device)
    return images, torch.from_numpy(masks).to(images_u8.device)
