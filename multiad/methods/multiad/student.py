"""Student S: SE-augmented, dilated WideResNet-50-2 with Eq. 5 fusion heads (METHOD_SPEC §3).

Same stage layout and strides as the teacher, so S's stage n map has T's stage n shape:
256×64×64, 512×32×32, 1024×16×16, 2048×8×8 at a 256×256 input.
"""

from __future__ import annotations

import torch
from torch import nn

from multiad.methods.multiad.fusion import StageFusion
from multiad.methods.multiad.se import SqueezeExcitation
from multiad.methods.multiad.student_base import FusedStudent

STAGE_BLOCKS = (3, 4, 6, 3)  # WRN-50
STAGE_PLANES = (64, 128, 256, 512)
WIDTH_FACTOR = 2  # "wide": 3×3 convolutions have 2× the planes of ResNet-50
EXPANSION = 4
PAPER_DILATION = (1, 2, 4, 8)


class SEBottleneck(nn.Module):
    """1×1 → dilated 3×3 (Eq. 1) → 1×1 bottleneck, SE (Eqs. 2–4) before the residual add."""

    def __init__(self, in_ch: int, planes: int, stride: int, dilation: int,
                 se_reduction: int | None) -> None:
        super().__init__()
        width = planes * WIDTH_FACTOR
        out_ch = planes * EXPANSION
        self.conv1 = nn.Conv2d(in_ch, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=dilation,
                               dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.se = SqueezeExcitation(out_ch, se_reduction) if se_reduction else nn.Identity()
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride,
                                                      bias=False), nn.BatchNorm2d(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.se(self.bn3(self.conv3(out)))
        return self.relu(out + self.downsample(x))


class SEDilatedWideResNet(FusedStudent):
    """The student trunk plus optional fusion heads; ``forward`` returns the 4 distilled maps.

    Args:
        se: add an SE block to every bottleneck (reduction ``se_reduction``).
        dilation_rates: 3×3 dilation per stage; ``(1, 1, 1, 1)`` is a plain WRN-50-2.
        fusion: offer ``StageFusion(F^{n-1}, F^n)`` for stages 2–4 instead of the raw
            trunk output (Eq. 5). The heads do not feed the next stage.
    """

    def __init__(self, se: bool = True, dilation_rates: tuple[int, ...] = PAPER_DILATION,
                 fusion: bool = True, se_reduction: int = 16) -> None:
        super().__init__()
        if len(dilation_rates) != 4:
            raise ValueError(f"dilation_rates needs 4 values, got {dilation_rates}")
        self.stem = nn.Sequential(
            nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(64),
            nn.ReLU(inplace=True), nn.MaxPool2d(3, stride=2, padding=1))
        stages = []
        in_ch = 64
        for i, (n_blocks, planes, rate) in enumerate(zip(STAGE_BLOCKS, STAGE_PLANES,
                                                          dilation_rates, strict=True)):
            blocks = []
            for b in range(n_blocks):
                stride = 2 if (b == 0 and i > 0) else 1
                blocks.append(SEBottleneck(in_ch, planes, stride, rate,
                                           se_reduction if se else None))
                in_ch = planes * EXPANSION
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        channels = [p * EXPANSION for p in STAGE_PLANES]
        self.fusion = nn.ModuleList(
            [StageFusion(channels[n - 1], channels[n]) for n in range(1, 4)]) if fusion else None
        self.init_weights()
