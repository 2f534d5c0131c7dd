"""torchvision ResNets as frozen backbones: the outputs of ``layer1..layer4``.

``wide_resnet50_2`` with ``IMAGENET1K_V1`` is the paper's teacher (and RD4AD's, PaDiM's,
PatchCore's): 256×64×64, 512×32×32, 1024×16×16, 2048×8×8 at a 256×256 input.
``resnet18`` is STFPM's.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torchvision import models

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ResNetStages(nn.Module):
    """A torchvision ResNet cut after ``layer4``: returns the four stage outputs."""

    def __init__(self, net: models.ResNet) -> None:
        super().__init__()
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.layers = nn.ModuleList([net.layer1, net.layer2, net.layer3, net.layer4])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x)
            feats.append(x)
        return feats


def resnet_builder(constructor: Callable[..., models.ResNet]
                   ) -> Callable[[dict[str, torch.Tensor] | None], nn.Module]:
    """A function building the stages of ``constructor``'s network, with the torchvision
    state dict loaded when one is given."""

    def build(state: dict[str, torch.Tensor] | None) -> nn.Module:
        net = constructor(weights=None)
        if state is not None:
            net.load_state_dict(state)
        return ResNetStages(net)

    return build
