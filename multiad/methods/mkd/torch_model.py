"""MKD's networks (paper §3; reference ``models/network.py``).

The teacher is a frozen pretrained backbone tapped at four stages (VGG-16: the outputs of
pool2–pool5). The "cloner" student is a thinner VGG: five blocks of 3×3 convolutions
(no bias, Xavier-uniform) each closed by a 2×2 max-pool; every convolution has ``thin``
channels except the last of blocks 2–5, which has the teacher's width at the matching tap,
so the student's four pool outputs line up with the teacher's maps (strides 4/8/16/32)
without any projection. Convolutions are followed by batch norm and ReLU, except the one
closing a block (ReLU only) — the reference's configuration 'B' for VGG-16:
16,16,M · 16,128,M · 16,16,256,M · 16,16,512,M · 16,16,512,M.
"""

from __future__ import annotations

import torch
from torch import nn

from multiad.backbones import FrozenBackbone
from multiad.config import RunConfig
from multiad.gaussian import gaussian_blur
from multiad.methods.base import AnomalyOutput
from multiad.methods.mkd.anomaly_map import position_maps, summed_map
from multiad.methods.mkd.loss import per_image_loss
from multiad.methods.mkd.saliency import GuidedReLU, grayscale, minmax, set_guided


def cloner_layout(channels: tuple[int, ...], thin: int) -> list[list[int]]:
    """The convolutions' widths per block: block 1 [thin, thin]; blocks 2–5 end at the
    teacher's tap widths (VGG-16 → 16,16 · 16,128 · 16,16,256 · 16,16,512 · 16,16,512)."""
    c1, c2, c3, c4 = channels
    return [[thin, thin], [thin, c1], [thin, thin, c2], [thin, thin, c3], [thin, thin, c4]]


class Cloner(nn.Module):
    """The student: returns its four pool outputs after blocks 2–5."""

    def __init__(self, channels: tuple[int, ...], thin: int = 16) -> None:
        super().__init__()
        blocks, c_in = [], 3
        for widths in cloner_layout(channels, thin):
            layers: list[nn.Module] = []
            for k, w in enumerate(widths):
                layers.append(nn.Conv2d(c_in, w, 3, padding=1, bias=False))
                if k < len(widths) - 1:  # not the block's last convolution: BN first
                    layers.append(nn.BatchNorm2d(w))
                layers.append(GuidedReLU())
                c_in = w
            layers.append(nn.MaxPool2d(2, 2))
            blocks.append(nn.Sequential(*layers))
        self.blocks = nn.ModuleList(blocks)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i:
                out.append(x)
        return out


class MKDModel(nn.Module):
    """Teacher and cloner; ``predict`` gives the loss as image score and the configured
    map (gradient saliency or feature difference)."""

    def __init__(self, cfg: RunConfig, teacher: FrozenBackbone) -> None:
        super().__init__()
        self.cfg, self.teacher = cfg, teacher
        self.student = Cloner(tuple(teacher.feature_info.channels), cfg.mkd.thin_width)
        mean = torch.tensor(teacher.mean).view(1, 3, 1, 1)
        std = torch.tensor(teacher.std).view(1, 3, 1, 1)
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)

    def net_input(self, x: torch.Tensor) -> torch.Tensor:
        """The networks' input from the teacher-normalised ``x``: the image in [0, 1]
        (``mkd.input = unnormalized``, the reference) or ``x`` itself."""
        if self.cfg.mkd.input == "unnormalized":
            return x * self.std + self.mean
        return x

    @staticmethod
    def taps(feats: list[torch.Tensor], which: tuple[int, ...]) -> list[torch.Tensor]:
        return [feats[n - 1] for n in which]

    def score_parts(self, inp: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor],
                                                       list[torch.Tensor]]:
        """(per-image loss at the score taps, the student's and the teacher's maps there)."""
        p = self.cfg.mkd
        s = self.taps(self.student(inp), p.score_taps)
        t = self.taps(self.teacher(inp), p.score_taps)
        return per_image_loss(s, t, float(p.lamda)), s, t

    def saliency(self, inp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(each image's loss, the gradient map of that loss w.r.t. its input pixels, N×H×W)
        from one forward and one backward pass (guided ReLUs change only the backward)."""
        guided = self.cfg.mkd.localization == "gbp"
        set_guided(self.student, guided)
        try:
            with torch.enable_grad():
                leaf = inp.detach().requires_grad_(True)
                loss, _, _ = self.score_parts(leaf)
                (grad,) = torch.autograd.grad(loss.sum(), leaf)
        finally:
            set_guided(self.student, False)
        g = grayscale(grad.float())
        return loss.detach(), (minmax(g) if guided else g)

    def predict(self, x: torch.Tensor) -> AnomalyOutput:
        p = self.cfg.mkd
        size = tuple(x.shape[-2:])
        with torch.autocast(x.device.type, enabled=False):
            inp = self.net_input(x.float())
            if p.localization == "features":
                with torch.no_grad():
                    score, s, t = self.score_parts(inp)
                fused = summed_map(position_maps(s, t), size)
            else:
                score, fused = self.saliency(inp)
            smoothed = gaussian_blur(fused, p.sigma)
        # one stored "layer": the unsmoothed map at the input size (a gradient map is no
        # function of per-tap maps; the combiner only smooths it again)
        return AnomalyOutput(layer_maps=[fused[:, None]], fused=fused, smoothed=smoothed,
                             score=score)
