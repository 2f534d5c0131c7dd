"""RD4AD through the method interface: ``build`` (its trainer), ``load``, ``combiner``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from multiad.backbones import build_backbone
from multiad.config import RunConfig
from multiad.gaussian import gaussian_blur
from multiad.methods.base import MapCombiner
from multiad.methods.rd4ad.anomaly_map import summed_map
from multiad.methods.rd4ad.torch_model import RD4ADModel
from multiad.methods.rd4ad.trainer import RD4ADTrainer


def build(cfg: RunConfig, device: torch.device) -> RD4ADTrainer:
    return RD4ADTrainer(cfg, device)


def load(cfg: RunConfig, blob: dict[str, Any], recalibrate: bool) -> RD4ADModel:  # noqa: ARG001
    model = RD4ADModel(cfg, build_backbone(cfg.teacher.backbone, cfg.teacher.weights))
    model.ocbe.load_state_dict(blob["ocbe"])
    model.decoder.load_state_dict(blob["decoder"])
    return model


def combiner(cfg: RunConfig, meta: dict[str, Any]) -> MapCombiner:  # noqa: ARG001
    """The sum of the stored layer maps, upsampled, then G_σ (Eq. 5)."""

    def combine(layers: Sequence[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        return gaussian_blur(summed_map(layers, size), cfg.rd4ad.sigma)

    return combine
