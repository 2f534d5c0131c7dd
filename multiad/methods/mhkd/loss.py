"""MHKD's hybrid distillation loss (paper Eqs. 4, 6, 7, 8; reference training loop):
with f_t the teacher's features normalised per channel (``teacher_normalization``),

- L_G = (hwc)⁻¹ Σ ‖f_t − f_g‖² (Eq. 4, the logical branch),
- L_L = (hwc)⁻¹ Σ ‖f_t − f_s‖² (Eq. 6, the structural branch),
- L_SG = (hwc)⁻¹ Σ ‖f_g − f_l‖² (Eq. 7, self-distillation: SEncoder1's f_l and the
  GDecoder's f_g learn to agree; both receive its gradient, as in the reference),
- L_total = α·L_L + β·L_G + γ·L_SG (Eq. 8; the code's α, β, γ = 1, 1, 2),

each a mean over the batch too."""

from __future__ import annotations

import torch


def mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(nhwc)⁻¹ Σ (a − b)² in float32."""
    return ((a.float() - b.float()) ** 2).mean()


def hybrid_loss(f_t: torch.Tensor, f_l: torch.Tensor, f_g: torch.Tensor, f_s: torch.Tensor,
                alpha: float = 1.0, beta: float = 1.0, gamma: float = 2.0
                ) -> dict[str, torch.Tensor]:
    """``loss`` (Eq. 8) and its terms ``L_L``, ``L_G``, ``L_SG``."""
    terms = {"L_L": mse(f_t, f_s), "L_G": mse(f_t, f_g), "L_SG": mse(f_g, f_l)}
    terms["loss"] = alpha * terms["L_L"] + beta * terms["L_G"] + gamma * terms["L_SG"]
    return terms
