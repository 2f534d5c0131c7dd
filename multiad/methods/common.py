"""Small pieces every method's maps and networks use: bilinear upsampling of a grid to the
input size, with the shared Gaussian smoothing (σ = 4, ``multiad.gaussian``), and the
reference codes' common initialisation of a randomly initialised network."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from multiad.gaussian import gaussian_blur


def upsample(grid: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """N×1×h×w → N×H×W, bilinear (``align_corners=False``), float32."""
    return F.interpolate(grid.float(), size=size, mode="bilinear", align_corners=False)[:, 0]


def upsample_and_smooth(grid: torch.Tensor, size: tuple[int, int], sigma: float
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """(upsampled, smoothed) N×H×W maps of an N×1×h×w score grid."""
    up = upsample(grid, size)
    return up, gaussian_blur(up, sigma)


def kaiming_init(module: nn.Module) -> None:
    """Kaiming-normal 2-D convolutions (fan out), BN as the identity; other layers keep
    torch's defaults (ResNet's, RD4AD's and Multi-AD's students' initialisation)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
