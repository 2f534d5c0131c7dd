"""SimpleNet through the method interface: ``build`` (its trainer), ``load``, ``combiner``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from multiad.backbones import build_backbone
from multiad.config import RunConfig
from multiad.methods.base import MapCombiner
from multiad.methods.simplenet.anomaly_map import simplenet_map
from multiad.methods.simplenet.torch_model import SimpleNetModel
from multiad.methods.simplenet.trainer import SimpleNetTrainer


def build(cfg: RunConfig, device: torch.device) -> SimpleNetTrainer:
    return SimpleNetTrainer(cfg, device)


def load(cfg: RunConfig, blob: dict[str, Any], recalibrate: bool) -> SimpleNetModel:  # noqa: ARG001
    model = SimpleNetModel(cfg, build_backbone(cfg.teacher.backbone, cfg.teacher.weights))
    model.adaptor.load_state_dict(blob["adaptor"])
    model.discriminator.load_state_dict(blob["discriminator"])
    return model


def combiner(cfg: RunConfig, meta: dict[str, Any]) -> MapCombiner:  # noqa: ARG001
    """The stored patch-score grid upsampled and smoothed, as at test time."""

    def combine(layers: Sequence[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        return simplenet_map(layers[0], size, cfg.simplenet.sigma)[1]

    return combine
