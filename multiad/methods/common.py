"""Small pieces every method's maps and networks use: bilinear upsampling of a grid to the
input size, with the shared Gaussian smoothing (σ = 4, ``multiad.gaussian``), and the
reference codes' common initialisation of a randomly initialised network."""

from __future__ import annotations

import math

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


def conv_fan_out(conv: nn.Conv2d) -> int:
    """The outputs one input position feeds: k_h·k_w·C_out / groups. torch's own fan-out
    ignores ``groups``, which for a depthwise convolution (groups = C) counts every output
    channel and starts it C times too small in variance (timm's EfficientNet init divides)."""
    kh, kw = conv.kernel_size
    return kh * kw * conv.out_channels // conv.groups


def kaiming_init(module: nn.Module) -> None:
    """Kaiming-normal 2-D convolutions (fan out, per group), BN as the identity; other layers
    keep torch's defaults (ResNet's, RD4AD's and Multi-AD's students' initialisation; for
    ungrouped convolutions the same as ``kaiming_normal_(mode="fan_out")``)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            std = nn.init.calculate_gain("relu") / math.sqrt(conv_fan_out(m))
            with torch.no_grad():
                m.weight.normal_(0.0, std)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
