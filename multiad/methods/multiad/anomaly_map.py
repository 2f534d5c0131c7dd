"""Anomaly maps and image score (paper Eqs. 13–15; METHOD_SPEC §7).

- ``layer_maps``: M^(n)(i,j) = 1 − cos(F̂_T^(n,i,j), F̂_S^(n,i,j)) at each stage (Eq. 13).
- ``fuse_maps``: M_fused = Σ_n up(Ψ(M^(n))) (Eq. 14, with MFF), or the plain sum / product
  of the raw maps (the "traditional" fusion of the ablation).
- ``image_score``: φ = max G_θ(M_fused) (Eq. 15).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from multiad.methods.multiad.loss import cosine_distance_map
from multiad.methods.multiad.mff import MultiScaleFusion

MAP_FUSIONS = ("sum", "product")


def layer_maps(t_feats: Sequence[torch.Tensor],
               s_feats: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Per-stage cosine-dissimilarity maps M^(n), each N×1×h_n×w_n (Eq. 13)."""
    return [cosine_distance_map(t, s)[:, None] for t, s in zip(t_feats, s_feats, strict=True)]


def fuse_maps(maps: Sequence[torch.Tensor], size: tuple[int, int],
              mff: MultiScaleFusion | None = None, mode: str = "sum") -> torch.Tensor:
    """Refine (Ψ, if ``mff``), bilinearly upsample to ``size`` and combine (Eq. 14). N×H×W."""
    if mode not in MAP_FUSIONS:
        raise ValueError(f"map fusion must be one of {MAP_FUSIONS}, got {mode!r}")
    refined = mff(maps) if mff is not None else list(maps)
    up = [F.interpolate(m, size=size, mode="bilinear", align_corners=False) for m in refined]
    out = up[0]
    for m in up[1:]:
        out = out + m if mode == "sum" else out * m
    return out[:, 0]


def image_score(smoothed: torch.Tensor) -> torch.Tensor:
    """φ = max over pixels of the smoothed fused map (Eq. 15). N."""
    return smoothed.flatten(1).amax(dim=1)
