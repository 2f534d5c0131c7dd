"""MHKD's teacher network F_t (paper §III-A): EfficientAD's patch description network
(PDN), the "medium" one — six convolutions and two average poolings, 33×33 receptive
field per output — with padding, so a 256×256 image gives 384×64×64 (reference
``get_pdn_medium(384, padding=True)``). ``width`` scales the inner channels (1.0: 256 and
512, the reference's)."""

from __future__ import annotations

from torch import nn


def inner(channels: int, width: float) -> int:
    """``channels`` scaled by ``width`` (at least 8)."""
    return max(8, round(channels * width))


def pdn_medium(out_channels: int = 384, width: float = 1.0) -> nn.Sequential:
    """conv4(256)–ReLU–avgpool2–conv4(512)–ReLU–avgpool2–conv1(512)–ReLU–conv3(512)–ReLU–
    conv4(out)–ReLU–conv1(out), padded 3/1/0/1/0/0 (pools padded 1)."""
    a, b = inner(256, width), inner(512, width)
    return nn.Sequential(
        nn.Conv2d(3, a, 4, padding=3), nn.ReLU(inplace=True), nn.AvgPool2d(2, 2, padding=1),
        nn.Conv2d(a, b, 4, padding=3), nn.ReLU(inplace=True), nn.AvgPool2d(2, 2, padding=1),
        nn.Conv2d(b, b, 1), nn.ReLU(inplace=True),
        nn.Conv2d(b, b, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(b, out_channels, 4), nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 1))
