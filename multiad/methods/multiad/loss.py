"""Training losses: distillation L_G (Eqs. 6–8) and adversarial L_D, L_adv, L_S (Eqs. 10–12)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def l2_normalize(feat: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """F̂ = F / ‖F‖₂ along channels, at every spatial position (Eq. 6). Computed in float32."""
    return F.normalize(feat.float(), p=2.0, dim=1, eps=eps)


def cosine_distance_map(f_t: torch.Tensor, f_s: torch.Tensor) -> torch.Tensor:
    """1 − cos(φ_T, φ_S) at every position (the summand of Eq. 8; Eq. 13). N×H×W."""
    return 1.0 - (l2_normalize(f_t) * l2_normalize(f_s)).sum(dim=1)


def distillation_loss(t_feats: Sequence[torch.Tensor],
                      s_feats: Sequence[torch.Tensor]) -> torch.Tensor:
    """L_G = 1/P Σ_i 1/Q_i Σ_j (1 − cos(φ_T^(i,j), φ_S^(i,j))) (Eq. 8), batch-averaged."""
    if len(t_feats) != len(s_feats):
        raise ValueError("teacher and student must offer the same number of layers")
    per_layer = [cosine_distance_map(t, s).mean() for t, s in zip(t_feats, s_feats, strict=True)]
    return torch.stack(per_layer).mean()


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """L_D = −1/m Σ [log D(F_T) + log(1 − D(F_S))] (Eq. 10), from logits."""
    real = F.binary_cross_entropy_with_logits(real_logits.float(), torch.ones_like(
        real_logits, dtype=torch.float32))
    fake = F.binary_cross_entropy_with_logits(fake_logits.float(), torch.zeros_like(
        fake_logits, dtype=torch.float32))
    return real + fake


def adversarial_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """L_adv = −1/m Σ log D(F_S) (Eq. 11, non-saturating), from logits."""
    return F.binary_cross_entropy_with_logits(fake_logits.float(), torch.ones_like(
        fake_logits, dtype=torch.float32))


def balanced_lambda(grad_g: Sequence[torch.Tensor], grad_adv: Sequence[torch.Tensor],
                    ratio: float, eps: float = 1e-12) -> torch.Tensor:
    """λ of Eq. 12 by gradient balancing (an interpretation; the paper gives no value):
    λ = ratio · ‖∂L_G/∂F_S‖ / ‖∂L_adv/∂F_S‖ over the student features D sees, a detached
    0-dim tensor (no host sync). The adversarial term then moves those features by
    ``ratio`` times what distillation moves them, whatever the scale of D's logits."""
    g = torch.sqrt(sum((t.float() ** 2).sum() for t in grad_g))
    a = torch.sqrt(sum((t.float() ** 2).sum() for t in grad_adv))
    return (ratio * g / (a + eps)).detach()


def student_loss(l_g: torch.Tensor, l_adv: torch.Tensor | None,
                 lam: float | torch.Tensor) -> torch.Tensor:
    """L_S = L_G + λ·L_adv (Eq. 12); without a discriminator L_S = L_G."""
    return l_g if l_adv is None else l_g + lam * l_adv
