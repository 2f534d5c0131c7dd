"""EfficientAD's autoencoder (paper §3.3, Fig. 4): it learns the teacher's output through a
64-value bottleneck, so it can reproduce only what is *logically* consistent with the
normal images; the student's second half learns to predict it.

Encoder: five 4×4 stride-2 convolutions (32, 32, 64, 64, 64 channels) and a convolution
over the whole remaining grid (8×8 at 256×256) to 64×1×1 (``width`` scales the 32 and 64,
as the PDNs' inner channels, for CPU-scale profiles). Decoder: six times bilinear
upsampling then a 4×4 convolution (padding 2), ReLU and dropout, to sizes 3, 8, 15, 32, 63
and 127 at 256×256 (S/64 − 1, S/32, S/16 − 1, S/8, S/4 − 1, S/2 − 1 at input size S, at
least 1), then upsampling to the student's grid and two 3×3 convolutions to the teacher's
channels. The paper gives the layers; the sizes were checked against the two public
reimplementations (nelson1425/EfficientAD and anomalib's, both Apache-2.0); no code
taken.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from multiad.methods.efficientad.pdn import inner


def decoder_sizes(image_size: int) -> list[int]:
    """The decoder's six upsampling sizes (3, 8, 15, 32, 63, 127 at 256)."""
    s = image_size
    return [max(1, v) for v in (s // 64 - 1, s // 32, s // 16 - 1, s // 8, s // 4 - 1,
                                s // 2 - 1)]


class Autoencoder(nn.Module):
    """``width`` scales the inner channels as the PDNs' (1.0: 32 and 64, the paper's)."""

    def __init__(self, out_channels: int, image_size: int, grid: tuple[int, int],
                 dropout: float = 0.2, width: float = 1.0) -> None:
        super().__init__()
        relu = nn.ReLU(inplace=True)
        a, b = inner(32, width), inner(64, width)
        self.encoder = nn.Sequential(
            nn.Conv2d(3, a, 4, 2, 1), relu, nn.Conv2d(a, a, 4, 2, 1), relu,
            nn.Conv2d(a, b, 4, 2, 1), relu, nn.Conv2d(b, b, 4, 2, 1), relu,
            nn.Conv2d(b, b, 4, 2, 1), relu, nn.Conv2d(b, b, max(1, image_size // 32)))
        self.sizes = decoder_sizes(image_size)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Conv2d(b, b, 4, 1, 2), nn.ReLU(inplace=True), nn.Dropout(dropout))
            for _ in self.sizes)
        self.grid = grid
        self.head = nn.Sequential(nn.Conv2d(b, b, 3, 1, 1), nn.ReLU(inplace=True),
                                  nn.Conv2d(b, out_channels, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.encoder(x)
        for size, block in zip(self.sizes, self.blocks, strict=True):
            z = block(F.interpolate(z, size=size, mode="bilinear", align_corners=False))
        z = F.interpolate(z, size=self.grid, mode="bilinear", align_corners=False)
        return self.head(z)


def output_side(net: nn.Sequential, side: int) -> int:
    """The side of ``net``'s output grid for a ``side``×``side`` input (convolutions and
    poolings only)."""
    for m in net:
        if isinstance(m, (nn.Conv2d, nn.AvgPool2d, nn.MaxPool2d)):
            k, s, p = (m.kernel_size, m.stride, m.padding)
            k, s, p = (v[0] if isinstance(v, tuple) else v for v in (k, s, p))
            side = (side + 2 * p - k) // s + 1
    return side
