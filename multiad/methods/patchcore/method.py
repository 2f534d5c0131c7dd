"""PatchCore through the method interface: ``build`` (its fitter), ``load``, ``combiner``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from multiad.backbones import FrozenBackbone, build_backbone
from multiad.config import RunConfig
from multiad.engine.trainer import FitterBase
from multiad.methods.base import AnomalyOutput, MapCombiner
from multiad.methods.patchcore.anomaly_map import image_score, patchcore_map
from multiad.methods.patchcore.nn_search import nearest_distances
from multiad.methods.patchcore.sampler import greedy_coreset
from multiad.methods.patchcore.torch_model import patch_features


class PatchCoreModel(nn.Module):
    """The frozen backbone and the memory bank of coreset patch features."""

    def __init__(self, cfg: RunConfig, teacher: FrozenBackbone, bank_size: int = 0) -> None:
        super().__init__()
        self.cfg, self.teacher = cfg, teacher
        self.register_buffer("bank", torch.zeros(bank_size, cfg.patchcore.target_dim))

    def features(self, feats: Sequence[torch.Tensor]) -> tuple[torch.Tensor, tuple[int, int]]:
        p = self.cfg.patchcore
        return patch_features(feats, p.layers, p.patch_size, p.pretrain_dim, p.target_dim)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> AnomalyOutput:
        with torch.autocast(x.device.type, enabled=False):  # distances in float32
            f, (h, w) = self.features(self.teacher(x.float()))
            scores = nearest_distances(f, self.bank, self.cfg.patchcore.k).reshape(
                len(x), 1, h, w)
            up, smoothed = patchcore_map(scores, tuple(x.shape[-2:]), self.cfg.patchcore.sigma)
        return AnomalyOutput(layer_maps=[scores], fused=up, smoothed=smoothed,
                             score=image_score(scores))


class PatchCoreFitter(FitterBase):
    """One pass: every training patch's features, then their coreset as the memory bank."""

    def __init__(self, cfg: RunConfig, device: torch.device) -> None:
        cfg = cfg.validate()
        super().__init__(cfg, device)
        self.model = PatchCoreModel(cfg, build_backbone(cfg.teacher.backbone,
                                                        cfg.teacher.weights)).to(device)
        self.teacher = self.model.teacher

    def fit(self, images_u8: torch.Tensor, progress: bool = True) -> dict[str, Any]:
        p = self.cfg.patchcore
        parts = [self.model.features(feats)[0]
                 for _, feats in self.batches(images_u8, progress, desc="PatchCore features")]
        features = torch.cat(parts)
        chosen = greedy_coreset(features, p.coreset_fraction, p.projection_dim,
                                p.start_points, p.seed, progress)
        self.model.bank = features[chosen].contiguous()
        return {"patchcore": {"patches": len(features), "bank": len(chosen),
                              "bank_mib": round(self.model.bank.numel() * 4 / 2**20, 1),
                              "features_mib": round(features.numel() * 4 / 2**20, 1)}}

    def inference_state(self) -> dict[str, Any]:
        return {"patchcore": {"bank": self.model.bank.cpu()}}


def build(cfg: RunConfig, device: torch.device) -> PatchCoreFitter:
    return PatchCoreFitter(cfg, device)


def load(cfg: RunConfig, blob: dict[str, Any], recalibrate: bool) -> PatchCoreModel:  # noqa: ARG001
    bank = blob["patchcore"]["bank"]
    model = PatchCoreModel(cfg, build_backbone(cfg.teacher.backbone, cfg.teacher.weights),
                           len(bank))
    model.bank.copy_(bank)
    return model


def combiner(cfg: RunConfig, meta: dict[str, Any]) -> MapCombiner:  # noqa: ARG001
    """The stored patch-score grid upsampled and smoothed, as at test time."""

    def combine(layers: Sequence[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        return patchcore_map(layers[0], size, cfg.patchcore.sigma)[1]

    return combine
