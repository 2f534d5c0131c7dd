"""RD4AD's anomaly map and score (paper Eqs. 4–5; reference ``cal_anomaly_map``, mode
"a"): per stage 1 − cos along channels at every position, bilinearly upsampled to the
input size and summed; smoothed by a Gaussian (σ = 4); the score is the maximum."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from multiad.methods.common import upsample


def layer_maps(enc: Sequence[torch.Tensor], dec: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """M_k = 1 − cos(E_k, D_k) per position, N×1×h_k×w_k each (Eq. 4)."""
    return [(1 - F.cosine_similarity(e.float(), d.float(), dim=1))[:, None]
            for e, d in zip(enc, dec, strict=True)]


def summed_map(maps: Sequence[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
    """Σ_k upsample(M_k) at ``size`` (Eq. 5). N×H×W."""
    return torch.stack([upsample(m, size) for m in maps]).sum(0)
