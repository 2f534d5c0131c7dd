"""Student S for an EfficientNet-Lite teacher: the same network, randomly initialised, with
Multi-AD's three changes (METHOD_SPEC §3 carried over to this family).

The block table (kernel, stride, expansion, channels of every block) is read from the
teacher itself, so S has T's stage layout and strides and each S map has the shape of the
matching T map. Changes, each switchable as for the WRN-50-2 student:

- an SE block (Eqs. 2–4) in every block, after the projection's batch norm and before the
  residual addition (Multi-AD's placement; Lite itself has no SE);
- dilated depthwise convolutions (Eq. 1) with rate r_n in the blocks of feature stage n,
  strides kept;
- the Eq. 5 fusion heads for stages 2–4, ending at BN without Eq. 5's ReLU: the teacher's
  stage outputs are linear bottlenecks (about half their values are negative), which a
  ReLU head could never match (the WRN-50-2 teacher's stages end in a ReLU, so there the
  ReLU is kept).

Convolutions use TensorFlow's "same" padding as the teacher does, so that every cell of an
S map covers the same image region as the T cell it is compared with (a symmetric padding
would shift S's grid by up to half a cell at each stride-2 block).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from timm.layers import create_conv2d
from torch import nn

from multiad.methods.multiad.fusion import StageFusion
from multiad.methods.multiad.se import SqueezeExcitation
from multiad.methods.multiad.student_base import FusedStudent

BN_EPS = 1e-3  # as the TensorFlow-trained teacher


@dataclass(frozen=True)
class BlockSpec:
    """One inverted-residual (or depthwise-separable, when ``mid == in_ch``) block."""

    in_ch: int
    mid: int
    out_ch: int
    kernel: int
    stride: int


def block_table(body: nn.Module) -> tuple[int, list[list[BlockSpec]]]:
    """The stem width and the blocks of each feature stage of a timm ``features_only``
    EfficientNet (feature stage n ends at the module ``feature_info`` names)."""
    ends = [int(name.split(".")[1]) for name in body.feature_info.module_name()]
    groups: list[list[BlockSpec]] = [[] for _ in ends]
    for i, stage in enumerate(body.blocks):
        n = next(k for k, end in enumerate(ends) if i <= end)
        for blk in stage:
            dw = blk.conv_dw
            if hasattr(blk, "conv_pwl"):  # inverted residual: expand, depthwise, project
                in_ch, out_ch = blk.conv_pw.in_channels, blk.conv_pwl.out_channels
            else:  # depthwise-separable: depthwise, project
                in_ch, out_ch = dw.in_channels, blk.conv_pw.out_channels
            groups[n].append(BlockSpec(in_ch, dw.in_channels, out_ch, dw.kernel_size[0],
                                       dw.stride[0]))
    return body.conv_stem.out_channels, groups


class SEMBConv(nn.Module):
    """[1×1 expand → BN → ReLU6] → dilated depthwise k×k → BN → ReLU6 → 1×1 project → BN →
    SE → (+ input, when the shape is kept)."""

    def __init__(self, b: BlockSpec, dilation: int, se_reduction: int | None) -> None:
        super().__init__()
        self.expand = None
        if b.mid != b.in_ch:
            self.expand = nn.Sequential(nn.Conv2d(b.in_ch, b.mid, 1, bias=False),
                                        nn.BatchNorm2d(b.mid, eps=BN_EPS), nn.ReLU6(inplace=True))
        self.depthwise = nn.Sequential(
            create_conv2d(b.mid, b.mid, b.kernel, stride=b.stride, dilation=dilation,
                          depthwise=True, padding="same"),
            nn.BatchNorm2d(b.mid, eps=BN_EPS), nn.ReLU6(inplace=True))
        self.project = nn.Sequential(nn.Conv2d(b.mid, b.out_ch, 1, bias=False),
                                     nn.BatchNorm2d(b.out_ch, eps=BN_EPS))
        self.se = SqueezeExcitation(b.out_ch, se_reduction) if se_reduction else nn.Identity()
        self.skip = b.stride == 1 and b.in_ch == b.out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x if self.expand is None else self.expand(x)
        out = self.se(self.project(self.depthwise(out)))
        return out + x if self.skip else out


class SEDilatedEfficientNetLite(FusedStudent):
    """The student trunk plus optional fusion heads; ``forward`` returns the 4 distilled
    maps (the teacher's feature shapes)."""

    def __init__(self, teacher_body: nn.Module, se: bool = True,
                 dilation_rates: tuple[int, ...] = (1, 2, 4, 8), fusion: bool = True,
                 se_reduction: int = 16) -> None:
        super().__init__()
        stem, groups = block_table(teacher_body)
        if len(dilation_rates) != len(groups):
            raise ValueError(f"dilation_rates needs {len(groups)} values, got {dilation_rates}")
        self.stem = nn.Sequential(create_conv2d(3, stem, 3, stride=2, padding="same"),
                                  nn.BatchNorm2d(stem, eps=BN_EPS), nn.ReLU6(inplace=True))
        self.stages = nn.ModuleList(
            nn.Sequential(*[SEMBConv(b, rate, se_reduction if se else None) for b in blocks])
            for blocks, rate in zip(groups, dilation_rates, strict=True))
        channels = [blocks[-1].out_ch for blocks in groups]
        self.fusion = nn.ModuleList(
            [StageFusion(channels[n - 1], channels[n], relu=False)
             for n in range(1, len(channels))]
        ) if fusion else None
        self.init_weights()
