"""MKD's localisation (paper §3.3; reference ``test_functions.py``, ``utils.py``): the
gradient of an image's loss with respect to its input pixels.

- vanilla gradients: g = ∂L/∂x;
- guided backpropagation (the reference's default): the same, with every ReLU of the
  *student* passing back only positive gradients where its output was positive
  (``GuidedReLU``); the teacher's ReLUs are ordinary.

Post-processing, per image, as the reference: Σ over RGB of |g|, scaled by
(v − min)/(p99 − min) and clipped to [0, 1] (its ``convert_to_grayscale``); guided
backpropagation then min–max scales to [0, 1]; both are Gaussian-smoothed with σ = 4.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class _GuidedReLUFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        out = x.clamp(min=0)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        (out,) = ctx.saved_tensors
        return grad.clamp(min=0) * (out > 0).to(grad.dtype)


class GuidedReLU(nn.Module):
    """A ReLU whose backward pass is guided backpropagation's while ``guided`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.guided = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.guided and torch.is_grad_enabled():
            return _GuidedReLUFunction.apply(x)
        return F.relu(x)


def set_guided(module: nn.Module, on: bool) -> None:
    """Switch guided backpropagation on or off in every ``GuidedReLU`` of ``module``."""
    for m in module.modules():
        if isinstance(m, GuidedReLU):
            m.guided = on


def grayscale(grad: torch.Tensor) -> torch.Tensor:
    """N×3×H×W gradients → N×H×W in [0, 1]: Σ_c |g|, (v − min)/(p99 − min), clipped."""
    v = grad.abs().sum(dim=1)
    flat = v.flatten(1)
    lo = flat.amin(dim=1)
    hi = torch.quantile(flat, 0.99, dim=1)
    scaled = (v - lo[:, None, None]) / (hi - lo).clamp_min(1e-12)[:, None, None]
    return scaled.clamp(0, 1)


def minmax(v: torch.Tensor) -> torch.Tensor:
    """Each N×H×W map scaled to [0, 1]."""
    flat = v.flatten(1)
    lo, hi = flat.amin(dim=1), flat.amax(dim=1)
    return (v - lo[:, None, None]) / (hi - lo).clamp_min(1e-12)[:, None, None]
