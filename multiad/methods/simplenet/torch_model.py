"""SimpleNet's networks (paper §3.1–3.4; reference ``simplenet.py``): the frozen backbone's
patch features (PatchCore's construction, :func:`multiad.methods.patchcore.torch_model.
patch_features`), the feature adaptor and the discriminator."""

from __future__ import annotations

import torch
from torch import nn

from multiad.backbones import FrozenBackbone
from multiad.config import RunConfig
from multiad.methods.base import AnomalyOutput
from multiad.methods.patchcore.torch_model import patch_features
from multiad.methods.simplenet.anomaly_map import image_score, simplenet_map


def _xavier(module: nn.Module) -> None:
    """Xavier-normal weights of every linear layer (the reference's ``init_weight``);
    biases keep torch's default."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_normal_(m.weight)


class Adaptor(nn.Module):
    """The feature adaptor G: one linear layer, no activation (§3.2)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, dim)
        _xavier(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class Discriminator(nn.Module):
    """D: linear → batch norm → LeakyReLU(0.2) → linear to one score, no bias (§3.4)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(dim, hidden), nn.BatchNorm1d(hidden),
                                  nn.LeakyReLU(0.2))
        self.tail = nn.Linear(hidden, 1, bias=False)
        _xavier(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One score per feature vector. (M,)"""
        return self.tail(self.body(x))[:, 0]


class SimpleNetModel(nn.Module):
    """The backbone, G and D; ``predict`` gives −D(G(features)) as maps and scores."""

    def __init__(self, cfg: RunConfig, teacher: FrozenBackbone) -> None:
        super().__init__()
        self.cfg, self.teacher = cfg, teacher
        p = cfg.simplenet
        self.adaptor = Adaptor(p.target_dim) if p.adaptor else nn.Identity()
        self.discriminator = Discriminator(p.target_dim, p.hidden)

    def features(self, feats: list[torch.Tensor]) -> tuple[torch.Tensor, tuple[int, int]]:
        """(N·h·w)×target_dim patch features on the first layer's grid (§3.1)."""
        p = self.cfg.simplenet
        return patch_features(feats, p.layers, p.patch_size, p.pretrain_dim, p.target_dim)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> AnomalyOutput:
        with torch.autocast(x.device.type, enabled=False):
            f, (h, w) = self.features(self.teacher(x.float()))
            scores = -self.discriminator(self.adaptor(f)).reshape(len(x), 1, h, w)
            up, smoothed = simplenet_map(scores, tuple(x.shape[-2:]), self.cfg.simplenet.sigma)
        return AnomalyOutput(layer_maps=[scores], fused=up, smoothed=smoothed,
                             score=image_score(scores))
