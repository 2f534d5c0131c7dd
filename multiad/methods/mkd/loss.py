"""MKD's loss and detection score (paper Eqs. 1–3 and §3.2; reference
``MseDirectionLoss`` and ``detection_test``).

At each tap l, with a_s^l, a_t^l the student's and the teacher's maps of one image:

    L_val = Σ_l mean((a_s^l − a_t^l)²)                 (Eq. 1; MSE over batch, C, H, W)
    L_dir = Σ_l mean_images(1 − cos(vec(a_s^l), vec(a_t^l)))   (Eq. 2; one cosine per
            image, over its whole flattened C·H·W map)
    L = L_dir + λ·L_val                                (Eq. 3)

The detection score of an image is its own L at the score taps (the reference leaves the
first tap out at test).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def direction_terms(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """1 − cos(vec(s_i), vec(t_i)) per image. N."""
    return 1 - F.cosine_similarity(s.flatten(1).float(), t.flatten(1).float(), dim=1, eps=1e-8)


def value_terms(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """mean((s_i − t_i)²) per image. N."""
    return ((s.float() - t.float()) ** 2).flatten(1).mean(dim=1)


def per_image_loss(s_feats: Sequence[torch.Tensor], t_feats: Sequence[torch.Tensor],
                   lamda: float) -> torch.Tensor:
    """Each image's L over the given taps. N."""
    pairs = list(zip(s_feats, t_feats, strict=True))
    direction = torch.stack([direction_terms(s, t) for s, t in pairs]).sum(dim=0)
    value = torch.stack([value_terms(s, t) for s, t in pairs]).sum(dim=0)
    return direction + lamda * value


def mkd_loss(s_feats: Sequence[torch.Tensor], t_feats: Sequence[torch.Tensor], lamda: float
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(L, L_dir, L_val) of a batch (Eq. 3): every term a batch mean, so L is the mean of
    the images' own losses."""
    pairs = list(zip(s_feats, t_feats, strict=True))
    l_dir = torch.stack([direction_terms(s, t).mean() for s, t in pairs]).sum()
    l_val = torch.stack([F.mse_loss(s.float(), t.float()) for s, t in pairs]).sum()
    return l_dir + lamda * l_val, l_dir, l_val
