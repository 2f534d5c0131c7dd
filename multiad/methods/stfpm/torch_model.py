"""STFPM's networks: the frozen pretrained teacher and a student of the same architecture,
randomly initialised (the architecture's own initialisation: torchvision's for ResNet-18,
timm's for EfficientNet-Lite), matched at the listed stages."""

from __future__ import annotations

import torch
from torch import nn

from multiad.backbones import FrozenBackbone, get_spec
from multiad.config import RunConfig
from multiad.methods.base import AnomalyOutput
from multiad.methods.stfpm.anomaly_map import layer_maps, product_map


def build_student(teacher: FrozenBackbone) -> nn.Module:
    """The teacher's architecture with fresh random weights (seed the RNG first)."""
    return get_spec(teacher.name).build(None)


class STFPMModel(nn.Module):
    """T and S; ``predict`` gives the product map (Eq. 4) and its maximum."""

    def __init__(self, cfg: RunConfig, teacher: FrozenBackbone) -> None:
        super().__init__()
        self.cfg, self.teacher = cfg, teacher
        self.student = build_student(teacher)

    def pick(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        return [feats[n - 1] for n in self.cfg.stfpm.layers]

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> AnomalyOutput:
        t, s = self.pick(self.teacher(x)), self.pick(list(self.student(x)))
        with torch.autocast(x.device.type, enabled=False):
            maps = layer_maps(t, s)
            fused = product_map(maps, tuple(x.shape[-2:]))
        return AnomalyOutput(layer_maps=maps, fused=fused, smoothed=fused,
                             score=fused.flatten(1).amax(dim=1))
