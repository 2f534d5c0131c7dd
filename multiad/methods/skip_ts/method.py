"""Skip-TS through the method interface: ``build`` (its trainer), ``load``, ``combiner``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from multiad.backbones import build_backbone
from multiad.config import RunConfig
from multiad.gaussian import gaussian_blur
from multiad.methods.base import MapCombiner
from multiad.methods.skip_ts.anomaly_map import summed_map
from multiad.methods.skip_ts.torch_model import SkipTSModel
from multiad.methods.skip_ts.trainer import SkipTSTrainer


def build(cfg: RunConfig, device: torch.device) -> SkipTSTrainer:
    return SkipTSTrainer(cfg, device)


def load(cfg: RunConfig, blob: dict[str, Any], recalibrate: bool) -> SkipTSModel:  # noqa: ARG001
    model = SkipTSModel(cfg, build_backbone(cfg.teacher.backbone, cfg.teacher.weights))
    model.decoder.load_state_dict(blob["decoder"])
    return model


def combiner(cfg: RunConfig, meta: dict[str, Any]) -> MapCombiner:  # noqa: ARG001
    """The sum of the stored layer maps, upsampled, then G_σ (Eq. 7, §IV-F)."""

    def combine(layers: Sequence[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        return gaussian_blur(summed_map(layers, size), cfg.skip_ts.sigma)

    return combine
