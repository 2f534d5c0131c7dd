"""PaDiM through the method interface: ``build`` (its fitter), ``load``, ``combiner``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from multiad.backbones import FrozenBackbone, build_backbone
from multiad.config import RunConfig
from multiad.engine.trainer import FitterBase
from multiad.methods.base import AnomalyOutput, MapCombiner
from multiad.methods.padim.anomaly_map import image_score, padim_map
from multiad.methods.padim.torch_model import GaussianStats, channel_subset, embed


class PadimModel(nn.Module):
    """The frozen backbone, the channel subset and the per-position Gaussians."""

    def __init__(self, cfg: RunConfig, teacher: FrozenBackbone) -> None:
        super().__init__()
        self.cfg, self.teacher = cfg, teacher
        p = cfg.padim
        info = teacher.feature_info
        n_channels = sum(info.channels[n - 1] for n in p.layers)
        self.register_buffer("index", channel_subset(n_channels, p.dims, p.dims_seed))
        side = info.spatial(cfg.data.image_size)[p.layers[0] - 1]
        self.stats = GaussianStats(len(self.index), side * side, p.eps, p.chunk)

    def embedding(self, x: torch.Tensor) -> torch.Tensor:
        return embed(self.teacher(x), self.cfg.padim.layers, self.index)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> AnomalyOutput:
        with torch.autocast(x.device.type, enabled=False):  # distances in float32
            dist = self.stats.mahalanobis(self.embedding(x.float()))
            up, smoothed = padim_map(dist, tuple(x.shape[-2:]), self.cfg.padim.sigma)
        return AnomalyOutput(layer_maps=[dist], fused=up, smoothed=smoothed,
                             score=image_score(smoothed))


class PadimFitter(FitterBase):
    """One pass: the training embeddings' mean and covariance at every position."""

    def __init__(self, cfg: RunConfig, device: torch.device) -> None:
        cfg = cfg.validate()
        super().__init__(cfg, device)
        self.model = PadimModel(cfg, build_backbone(cfg.teacher.backbone,
                                                    cfg.teacher.weights)).to(device)
        self.teacher = self.model.teacher

    def fit(self, images_u8: torch.Tensor, progress: bool = True) -> dict[str, Any]:
        for _, feats in self.batches(images_u8, progress, desc="PaDiM statistics"):
            self.model.stats.update(embed(feats, self.cfg.padim.layers, self.model.index))
        self.model.stats.finalise()
        stats = self.model.stats
        return {"padim": {"dims": len(self.model.index), "positions": stats.mean.shape[0],
                          "statistics_mib": round(stats.precision.numel() * 4 / 2**20, 1)}}

    def inference_state(self) -> dict[str, Any]:
        return {"padim": pack(self.model.stats)}


def pack(stats: GaussianStats) -> dict[str, torch.Tensor]:
    """μ and the lower triangle of each (symmetric) Σ⁻¹, on the CPU: half the full size."""
    d = stats.mean.shape[1]
    rows, cols = torch.tril_indices(d, d, device=stats.precision.device)
    return {"mean": stats.mean.cpu(), "precision_tril": stats.precision[:, rows, cols].cpu(),
            "count": stats.count.cpu()}


def unpack(stats: GaussianStats, packed: dict[str, torch.Tensor]) -> None:
    d = stats.mean.shape[1]
    rows, cols = torch.tril_indices(d, d)
    stats.precision[:, rows, cols] = packed["precision_tril"]  # in place: no second copy
    stats.precision[:, cols, rows] = packed["precision_tril"]
    stats.mean.copy_(packed["mean"])
    stats.count.copy_(packed["count"])


def build(cfg: RunConfig, device: torch.device) -> PadimFitter:
    return PadimFitter(cfg, device)


def load(cfg: RunConfig, blob: dict[str, Any], recalibrate: bool) -> PadimModel:  # noqa: ARG001
    model = PadimModel(cfg, build_backbone(cfg.teacher.backbone, cfg.teacher.weights))
    unpack(model.stats, blob["padim"])
    return model


def combiner(cfg: RunConfig, meta: dict[str, Any]) -> MapCombiner:  # noqa: ARG001
    """The stored Mahalanobis grid upsampled and smoothed, as at test time."""

    def combine(layers: Sequence[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        return padim_map(layers[0], size, cfg.padim.sigma)[1]

    return combine
