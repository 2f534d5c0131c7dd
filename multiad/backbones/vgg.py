"""torchvision VGG-16 (no batch norm) as a frozen backbone: the outputs of its last four
max-pools (pool2–pool5), MKD's teacher taps.

At a 256×256 input: 128×64×64, 256×32×32, 512×16×16, 512×8×8 (strides 4/8/16/32). MKD's
reference takes these four maps for its training loss and the last three for its score.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision import models

# indices of `features` whose outputs are returned: the max-pools closing blocks 2–5
VGG16_TAPS = (9, 16, 23, 30)


class VGGStages(nn.Module):
    """``features[:31]`` of a torchvision VGG, returning the outputs at ``taps``."""

    def __init__(self, features: nn.Sequential, taps: tuple[int, ...] = VGG16_TAPS) -> None:
        super().__init__()
        self.features = features[: max(taps) + 1]
        self.taps = frozenset(taps)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.taps:
                out.append(x)
        return out


def build_vgg16(state: dict[str, torch.Tensor] | None) -> nn.Module:
    """VGG-16's stages, with the torchvision state dict loaded when one is given."""
    net = models.vgg16(weights=None)
    if state is not None:
        net.load_state_dict(state)
    return VGGStages(net.features)
