"""EfficientAD's training loss (paper §3.2–3.3, Eqs. 1–3):

- hard feature loss: D = (T̂ − S_ST)² elementwise; L_hard = the mean of the D at or above
  D's ``p_hard`` quantile (0.999): the student learns where it is worst;
- penalty: L_ST = L_hard + mean S_ST(P)² over the student's outputs on a natural
  photograph P (ImageNet's in the paper): it keeps the student from imitating the teacher
  outside the normal images;
- autoencoder: L_AE = mean (T̂(I′) − A(I′))², L_STAE = mean (A(I′) − S_AE(I′))² on an
  augmented image I′ (one of brightness, contrast, saturation, factor in [0.8, 1.2]);
- L = L_ST + L_AE + L_STAE.
"""

from __future__ import annotations

import torch


def mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """mean (a − b)² in float32."""
    return ((a.float() - b.float()) ** 2).mean()


def hard_feature_loss(t: torch.Tensor, s: torch.Tensor, p_hard: float) -> torch.Tensor:
    """The mean of the squared differences at or above their ``p_hard`` quantile (the
    order statistic at ⌊p_hard·(n − 1)⌋: exact at any size, unlike ``torch.quantile``'s
    16-million-element limit)."""
    d = (t.float() - s.float()) ** 2
    flat = d.flatten()
    k = int(p_hard * (flat.numel() - 1)) + 1
    threshold = flat.kthvalue(k).values
    return d[d >= threshold].mean()


def penalty_loss(s_penalty: torch.Tensor) -> torch.Tensor:
    """mean S_ST(P)²: the student's (first-half) outputs on natural photographs."""
    return (s_penalty.float() ** 2).mean()
