"""Squeeze-and-excitation channel recalibration (paper Eqs. 2–4)."""

from __future__ import annotations

import torch
from torch import nn


class SqueezeExcitation(nn.Module):
    """SE block: z = GAP(x) (Eq. 2), s = σ(τ2·ReLU(τ1·z)) (Eq. 3), x̂_c = s_c·x_c (Eq. 4)."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.tau1 = nn.Linear(channels, hidden)
        self.tau2 = nn.Linear(hidden, channels)

    def scale(self, x: torch.Tensor) -> torch.Tensor:
        """Channel-wise factors s (N×C), Eqs. 2–3."""
        z = x.mean(dim=(2, 3))
        return torch.sigmoid(self.tau2(torch.relu(self.tau1(z))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale(x)[:, :, None, None]
