"""EfficientAD's patch description networks (PDN; paper §3.1, Fig. 2): a few convolutions
and two average poolings, each output seeing a 33×33 patch. ``padding=False`` is the
paper's (a 256×256 image gives a 56×56 grid); MHKD's teacher is the padded medium one
(64×64). ``width`` scales the inner channels (1.0: the paper's)."""

from __future__ import annotations

from torch import nn


def inner(channels: int, width: float) -> int:
    """``channels`` scaled by ``width`` (at least 8)."""
    return max(8, round(channels * width))


def pdn_small(out_channels: int = 384, width: float = 1.0, padding: bool = False
              ) -> nn.Sequential:
    """EfficientAD-S: conv4(128)–ReLU–avgpool2–conv4(256)–ReLU–avgpool2–conv3(256)–ReLU–
    conv4(out)."""
    a, b, p = inner(128, width), inner(256, width), int(padding)
    return nn.Sequential(
        nn.Conv2d(3, a, 4, padding=3 * p), nn.ReLU(inplace=True),
        nn.AvgPool2d(2, 2, padding=p),
        nn.Conv2d(a, b, 4, padding=3 * p), nn.ReLU(inplace=True),
        nn.AvgPool2d(2, 2, padding=p),
        nn.Conv2d(b, b, 3, padding=p), nn.ReLU(inplace=True),
        nn.Conv2d(b, out_channels, 4))


def pdn_medium(out_channels: int = 384, width: float = 1.0, padding: bool = True
               ) -> nn.Sequential:
    """EfficientAD-M (and MHKD's teacher): conv4(256)–ReLU–avgpool2–conv4(512)–ReLU–
    avgpool2–conv1(512)–ReLU–conv3(512)–ReLU–conv4(out)–ReLU–conv1(out); padded 3/1/0/1/0/0
    (pools 1) when ``padding``."""
    a, b, p = inner(256, width), inner(512, width), int(padding)
    return nn.Sequential(
        nn.Conv2d(3, a, 4, padding=3 * p), nn.ReLU(inplace=True),
        nn.AvgPool2d(2, 2, padding=p),
        nn.Conv2d(a, b, 4, padding=3 * p), nn.ReLU(inplace=True),
        nn.AvgPool2d(2, 2, padding=p),
        nn.Conv2d(b, b, 1), nn.ReLU(inplace=True),
        nn.Conv2d(b, b, 3, padding=p), nn.ReLU(inplace=True),
        nn.Conv2d(b, out_channels, 4), nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 1))


PDNS = {"small": pdn_small, "medium": pdn_medium}


def build_pdn(size: str, out_channels: int, width: float, padding: bool) -> nn.Sequential:
    """The ``size`` PDN (``"small"`` or ``"medium"``)."""
    return PDNS[size](out_channels, width, padding)
