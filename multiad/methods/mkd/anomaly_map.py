"""MKD's feature-difference map, an interpretation beside the paper's gradient maps
(``book/baselines.md``): at each score tap, 1 − cos between the student's and the
teacher's feature vectors at every position, bilinearly upsampled to the input size and
summed over the taps (RD4AD's and Multi-AD's map applied to MKD's networks)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from multiad.methods.common import upsample


def position_maps(s_feats: Sequence[torch.Tensor], t_feats: Sequence[torch.Tensor]
                  ) -> list[torch.Tensor]:
    """1 − cos per position at each tap, N×1×h_l×w_l."""
    return [(1 - F.cosine_similarity(s.float(), t.float(), dim=1))[:, None]
            for s, t in zip(s_feats, t_feats, strict=True)]


def summed_map(maps: Sequence[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
    """Σ_l upsample(map_l) at ``size``. N×H×W."""
    return torch.stack([upsample(m, size) for m in maps]).sum(dim=0)
