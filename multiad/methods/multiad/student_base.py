"""What every Multi-AD student shares (METHOD_SPEC §3): a trunk of stages after a stem,
and the Eq. 5 fusion heads that offer stages 2..n for distillation (the heads do not feed
the next stage, so "fusion off" is exactly the trunk's own stage outputs)."""

from __future__ import annotations

import torch
from torch import nn

from multiad.methods.common import kaiming_init


class FusedStudent(nn.Module):
    """Subclasses set ``stem``, ``stages`` and ``fusion`` (an ``nn.ModuleList`` of
    :class:`~multiad.methods.multiad.fusion.StageFusion` for stages 2..n, or ``None``)."""

    stem: nn.Module
    stages: nn.ModuleList
    fusion: nn.ModuleList | None

    def init_weights(self) -> None:
        """Kaiming-normal convolutions (fan out), BN as identity: a random student."""
        kaiming_init(self)

    def trunk(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The stage outputs F_S^1..F_S^n of the trunk."""
        feats = []
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The maps S offers for distillation: stage 1 as is, then Eq. 5 per later stage."""
        feats = self.trunk(x)
        if self.fusion is None:
            return feats
        return [feats[0]] + [head(feats[n - 1], feats[n])
                             for n, head in enumerate(self.fusion, start=1)]
