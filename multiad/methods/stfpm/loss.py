"""STFPM's training loss (paper Eqs. 1–2; reference).

Per layer l: the teacher's and the student's features are L2-normalised along channels
(F̂ = F/‖F‖) and ‖F̂_t − F̂_s‖² is averaged over the batch and the positions; the loss is
the sum over the layers (weights α_l = 1). For unit vectors ‖F̂_t − F̂_s‖² = 2(1 − cos).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def squared_distance_map(f_t: torch.Tensor, f_s: torch.Tensor) -> torch.Tensor:
    """‖F̂_t − F̂_s‖² at every position (channels normalised first). N×H×W, float32."""
    t = F.normalize(f_t.float(), p=2.0, dim=1)
    s = F.normalize(f_s.float(), p=2.0, dim=1)
    return ((t - s) ** 2).sum(dim=1)


def stfpm_loss(t_feats: Sequence[torch.Tensor], s_feats: Sequence[torch.Tensor]) -> torch.Tensor:
    """Σ_l mean over (batch, h, w) of ‖F̂_t^l − F̂_s^l‖² (Eq. 2 with α_l = 1)."""
    return torch.stack([squared_distance_map(t, s).mean()
                        for t, s in zip(t_feats, s_feats, strict=True)]).sum()
