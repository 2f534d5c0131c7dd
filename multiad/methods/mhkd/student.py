"""MHKD's multi-task student F_s (paper §III-B, Eqs. 2, 3, 5; reference ``Student``).

- SEncoder1: six convolutions and two *max* poolings (the teacher has average poolings and
  other widths: a deliberate asymmetry), to f_l with the teacher's channels and grid
  (384×64×64 at 256×256).
- SEncoder2: two stride-2 4×4 convolutions, f_l → f_h (512×16×16).
- LDecoder (structural): bicubic upsampling to twice f_h's grid, a 4×4 convolution,
  dropout, upsampling to f_l's grid, 3×3 and two 1×1 convolutions → f_s.
- GDecoder (logical): the bottleneck Conv-1, a convolution whose kernel covers all of f_h
  (16 at 256×256), compresses it to one 64-d vector f_g′ (1×1); bicubic upsampling
  (to 1/16, 1/8, 1/2 and all of the output grid: 4, 8, 32, 64 at 256×256) with 3×3
  convolutions and dropout restores f_g.

``width`` scales the inner channels (1.0: the reference's); f_l, f_s and f_g keep
``out_channels``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from multiad.methods.efficientad.pdn import inner


def _relu() -> nn.ReLU:
    return nn.ReLU(inplace=True)


class Resize(nn.Module):
    """Bicubic resampling to a fraction of a target grid known only at run time."""

    def __init__(self, fraction: float) -> None:
        super().__init__()
        self.fraction = fraction

    def forward(self, x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        size = (max(1, round(grid[0] * self.fraction)), max(1, round(grid[1] * self.fraction)))
        return F.interpolate(x, size=size, mode="bicubic", align_corners=False)


class LDecoder(nn.Module):
    """f_h → f_s (Eq. 5)."""

    def __init__(self, cin: int, out_channels: int, width: float, dropout: float) -> None:
        super().__init__()
        c = inner(512, width)
        self.up1, self.up2 = Resize(0.5), Resize(1.0)
        self.conv1 = nn.Sequential(nn.Conv2d(cin, c, 4, padding=2), _relu(), nn.Dropout(dropout))
        self.head = nn.Sequential(
            nn.Conv2d(c, c, 3, padding=1), _relu(), nn.Conv2d(c, out_channels, 1), _relu(),
            nn.Conv2d(out_channels, out_channels, 1))

    def forward(self, f_h: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        return self.head(self.up2(self.conv1(self.up1(f_h, grid)), grid))


class GDecoder(nn.Module):
    """f_h → f_g′ (1×1×64, the bottleneck Conv-1) → f_g (Eq. 3)."""

    def __init__(self, cin: int, out_channels: int, width: float, dropout: float) -> None:
        super().__init__()
        self.code = 64
        c = self.code
        self.ups = nn.ModuleList([Resize(f) for f in (1 / 16, 1 / 8, 1 / 2, 1.0)])
        self.convs = nn.ModuleList([
            nn.Sequential(nn.Conv2d(c, c, 3, padding=1), _relu(), nn.Dropout(dropout))
            for _ in range(3)] + [
            nn.Sequential(nn.Conv2d(c, inner(128, width), 3, padding=1), _relu(),
                          nn.Dropout(dropout))])
        self.head = nn.Sequential(
            nn.Conv2d(inner(128, width), inner(256, width), 3, padding=1), _relu(),
            nn.Dropout(dropout),
            nn.Conv2d(inner(256, width), out_channels, 3, padding=1), _relu(),
            nn.Conv2d(out_channels, out_channels, 3, padding=1))
        self.cin = cin
        self.bottleneck: nn.Conv2d | None = None  # its kernel is f_h's grid: built lazily

    def bottleneck_for(self, f_h: torch.Tensor) -> nn.Conv2d:
        if self.bottleneck is None or self.bottleneck.kernel_size != tuple(f_h.shape[-2:]):
            raise ValueError(f"GDecoder's bottleneck was built for f_h of "
                             f"{None if self.bottleneck is None else self.bottleneck.kernel_size}"
                             f", got {tuple(f_h.shape[-2:])}: MHKD is trained and evaluated at "
                             "one image size")
        return self.bottleneck

    def forward(self, f_h: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        x = self.bottleneck_for(f_h)(f_h)  # f_g′: N×64×1×1
        for up, conv in zip(self.ups, self.convs, strict=True):
            x = conv(up(x, grid))
        return self.head(x)


class MHKDStudent(nn.Module):
    """SEncoder1, SEncoder2, LDecoder, GDecoder; ``forward`` returns (f_l, f_g, f_s)."""

    def __init__(self, image_size: int, out_channels: int = 384, width: float = 1.0,
                 dropout: float = 0.2) -> None:
        super().__init__()
        c1, c2, c3 = inner(128, width), inner(256, width), inner(512, width)
        self.sencoder1 = nn.Sequential(
            nn.Conv2d(3, c1, 4, padding=3), _relu(), nn.MaxPool2d(2, 2, padding=1),
            nn.Conv2d(c1, c1, 4, padding=3), _relu(),
            nn.Conv2d(c1, c2, 3, padding=1), _relu(), nn.MaxPool2d(2, 2, padding=1),
            nn.Conv2d(c2, c3, 1), _relu(),
            nn.Conv2d(c3, out_channels, 4), _relu(),
            nn.Conv2d(out_channels, out_channels, 1))
        self.sencoder2 = nn.Sequential(
            nn.Conv2d(out_channels, c3, 4, stride=2, padding=1), _relu(),
            nn.Conv2d(c3, c3, 4, stride=2, padding=1), _relu())
        self.ldecoder = LDecoder(c3, out_channels, width, dropout)
        self.gdecoder = GDecoder(c3, out_channels, width, dropout)
        side = self.f_h_side(image_size)
        self.gdecoder.bottleneck = nn.Conv2d(c3, self.gdecoder.code, side)

    def f_h_side(self, image_size: int) -> int:
        """f_h's side for a square input (a dry run of the encoders' shapes)."""
        with torch.no_grad():
            x = torch.zeros(1, 3, image_size, image_size)
            return int(self.sencoder2(self.sencoder1(x)).shape[-1])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        f_l = self.sencoder1(x)
        f_h = self.sencoder2(f_l)
        grid = (f_l.shape[-2], f_l.shape[-1])
        return f_l, self.gdecoder(f_h, grid), self.ldecoder(f_h, grid)
