"""MKD through the method interface: ``build`` (its trainer), ``load``, ``combiner``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from multiad.backbones import build_backbone
from multiad.config import RunConfig
from multiad.gaussian import gaussian_blur
from multiad.methods.base import MapCombiner
from multiad.methods.mkd.torch_model import MKDModel
from multiad.methods.mkd.trainer import MKDTrainer


def build(cfg: RunConfig, device: torch.device) -> MKDTrainer:
    return MKDTrainer(cfg, device)


def load(cfg: RunConfig, blob: dict[str, Any], recalibrate: bool) -> MKDModel:  # noqa: ARG001
    model = MKDModel(cfg, build_backbone(cfg.teacher.backbone, cfg.teacher.weights))
    model.student.load_state_dict(blob["student"])
    return model


def combiner(cfg: RunConfig, meta: dict[str, Any]) -> MapCombiner:  # noqa: ARG001
    """The stored unsmoothed map (at the input size), smoothed as at test time."""

    def combine(layers: Sequence[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:  # noqa: ARG001
        return gaussian_blur(layers[0][:, 0].float(), cfg.mkd.sigma)

    return combine
