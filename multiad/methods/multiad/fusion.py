"""Student-side feature fusion (paper Eq. 5; METHOD_SPEC §3)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class StageFusion(nn.Module):
    """F_fused = ReLU(BN(ω * [pool(F_low), F_up])) with ω a 1×1 convolution (Eq. 5).

    ``F_low`` is the previous stage's output, average-pooled to the size of ``F_up``; the
    result has ``F_up``'s channel count, so it can be distilled against the teacher's map.
    ``relu=False`` ends the head at BN, for teachers whose stage outputs are signed (the
    linear bottlenecks of EfficientNet-Lite): a ReLU head could never match them.
    """

    def __init__(self, low_channels: int, up_channels: int, relu: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(low_channels + up_channels, up_channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(up_channels)
        self.relu = relu

    def forward(self, low: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
        low = F.adaptive_avg_pool2d(low, up.shape[-2:])
        out = self.bn(self.conv(torch.cat([low, up], dim=1)))
        return torch.relu(out) if self.relu else out
