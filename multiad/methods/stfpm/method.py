"""STFPM through the method interface: ``build`` (its trainer), ``load``, ``combiner``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from multiad.backbones import build_backbone
from multiad.config import RunConfig
from multiad.methods.base import MapCombiner
from multiad.methods.stfpm.anomaly_map import product_map
from multiad.methods.stfpm.torch_model import STFPMModel
from multiad.methods.stfpm.trainer import STFPMTrainer


def build(cfg: RunConfig, device: torch.device) -> STFPMTrainer:
    return STFPMTrainer(cfg, device)


def load(cfg: RunConfig, blob: dict[str, Any], recalibrate: bool) -> STFPMModel:  # noqa: ARG001
    model = STFPMModel(cfg, build_backbone(cfg.teacher.backbone, cfg.teacher.weights))
    model.student.load_state_dict(blob["student"])
    return model


def combiner(cfg: RunConfig, meta: dict[str, Any]) -> MapCombiner:  # noqa: ARG001
    """The product of the stored layer maps, upsampled (Eq. 4)."""

    def combine(layers: Sequence[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        return product_map(layers, size)

    return combine
