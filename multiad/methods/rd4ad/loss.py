"""RD4AD's training loss (paper Eqs. 2–3; reference ``loss_fucntion``): for each stage k,
1 − cos between the encoder's and the decoder's feature maps, each *flattened to one
vector per image* (not per position), averaged over the batch; summed over the stages."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def rd4ad_loss(enc: Sequence[torch.Tensor], dec: Sequence[torch.Tensor]) -> torch.Tensor:
    """Σ_k mean_b (1 − cos(vec(E_k(b)), vec(D_k(b))))."""
    terms = [(1 - F.cosine_similarity(e.float().flatten(1), d.float().flatten(1), dim=1)).mean()
             for e, d in zip(enc, dec, strict=True)]
    return torch.stack(terms).sum()
