"""RD4AD's student: the one-class bottleneck embedding (OCBE) and the reverse decoder
(paper §3.1–3.2; reference ``resnet.py`` ``BN_layer`` and ``de_resnet.py``).

Both are described by the encoder's channels (c1, c2, c3) of the stages they use, so the
same code builds the reference networks for WRN-50-2 (256, 512, 1024 → a 2048-channel
embedding; "wide" bottlenecks: inner width = out/2) and their counterparts for another
backbone (EfficientNet-Lite0: 24, 40, 112 → 224).

- OCBE: the two shallower stages are brought to the third one's grid by stride-2 3×3
  convolutions (MFF), concatenated with it (3·c3 channels) and encoded by ``ocbe_blocks``
  bottlenecks, the first with stride 2 (OCE), into 2·c3 channels.
- Decoder: three stages of bottlenecks, deep to shallow, each beginning with a stride-2
  2×2 transposed convolution, reconstructing c3, c2 and c1 channels at the encoder's grids.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from multiad.backbones import FrozenBackbone
from multiad.config import RunConfig
from multiad.gaussian import gaussian_blur
from multiad.methods.base import AnomalyOutput
from multiad.methods.common import kaiming_init
from multiad.methods.rd4ad.anomaly_map import layer_maps, summed_map


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


class Bottleneck(nn.Module):
    """1×1 → 3×3 (stride) → 1×1 with a projected shortcut when the shape changes."""

    def __init__(self, cin: int, width: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            conv3x3(width, width, stride), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


class DeBottleneck(nn.Module):
    """The decoder's bottleneck: its 3×3 convolution is a 2×2 transposed one at stride 2
    (and so is the shortcut's projection)."""

    def __init__(self, cin: int, width: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        mid = (nn.ConvTranspose2d(width, width, 2, stride=2, bias=False) if stride == 2
               else conv3x3(width, width))
        self.body = nn.Sequential(
            nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            mid, nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.ConvTranspose2d(cin, cout, 2, stride=stride, bias=False) if stride == 2
            else nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


class OCBE(nn.Module):
    """Multi-scale feature fusion + one-class embedding (reference ``BN_layer``)."""

    def __init__(self, channels: Sequence[int], blocks: int = 3) -> None:
        super().__init__()
        c1, c2, c3 = channels
        relu = nn.ReLU(inplace=True)
        self.down1 = nn.Sequential(conv3x3(c1, c2, 2), nn.BatchNorm2d(c2), relu,
                                   conv3x3(c2, c3, 2), nn.BatchNorm2d(c3), relu)
        self.down2 = nn.Sequential(conv3x3(c2, c3, 2), nn.BatchNorm2d(c3), relu)
        out = 2 * c3
        self.encode = nn.Sequential(Bottleneck(3 * c3, out // 2, out, stride=2),
                                    *[Bottleneck(out, out // 2, out) for _ in range(blocks - 1)])
        kaiming_init(self)  # the reference's (transposed convolutions: torch's default)

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        f1, f2, f3 = feats
        return self.encode(torch.cat([self.down1(f1), self.down2(f2), f3], dim=1))


class ReverseDecoder(nn.Module):
    """From the embedding (2·c3 channels) back to the encoder's c3, c2, c1 (reference
    ``de_wide_resnet50_2``); returns them shallow to deep, as the encoder's. ``cin``: the
    input's channels when it is not the embedding (Skip-TS feeds the encoder's fourth
    stage)."""

    def __init__(self, channels: Sequence[int], blocks: Sequence[int] = (3, 4, 6),
                 cin: int | None = None) -> None:
        super().__init__()
        cin = cin or 2 * channels[-1]
        stages = []
        for cout, n in zip(reversed(channels), blocks, strict=True):
            stages.append(nn.Sequential(DeBottleneck(cin, cout // 2, cout, stride=2),
                                        *[DeBottleneck(cout, cout // 2, cout)
                                          for _ in range(n - 1)]))
            cin = cout
        self.stages = nn.ModuleList(stages)
        kaiming_init(self)  # the reference's (transposed convolutions: torch's default)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return outs[::-1]


class RD4ADModel(nn.Module):
    """Encoder (the frozen teacher), OCBE and decoder; ``predict`` gives Eqs. 4–5."""

    def __init__(self, cfg: RunConfig, teacher: FrozenBackbone) -> None:
        super().__init__()
        self.cfg, self.teacher = cfg, teacher
        p = cfg.rd4ad
        if len(p.layers) != 3:
            raise ValueError(f"rd4ad.layers needs three encoder stages, got {p.layers}")
        channels = [teacher.feature_info.channels[n - 1] for n in p.layers]
        self.ocbe = OCBE(channels, p.ocbe_blocks)
        self.decoder = ReverseDecoder(channels, p.decoder_blocks)

    def pick(self, feats: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return [feats[n - 1] for n in self.cfg.rd4ad.layers]

    def reconstruct(self, enc: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return self.decoder(self.ocbe(enc))

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> AnomalyOutput:
        enc = self.pick(self.teacher(x))
        dec = self.reconstruct(enc)
        with torch.autocast(x.device.type, enabled=False):
            maps = layer_maps(enc, dec)
            fused = summed_map(maps, tuple(x.shape[-2:]))
            smoothed = gaussian_blur(fused, self.cfg.rd4ad.sigma)
        return AnomalyOutput(layer_maps=maps, fused=fused, smoothed=smoothed,
                             score=smoothed.flatten(1).amax(dim=1))
