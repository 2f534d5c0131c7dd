"""MHKD through the method interface: ``build`` (its trainer), ``load``, ``combiner``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from multiad.config import RunConfig
from multiad.gaussian import gaussian_blur
from multiad.methods.base import MapCombiner
from multiad.methods.mhkd.anomaly_map import pixel_map
from multiad.methods.mhkd.distill import pdn_teacher
from multiad.methods.mhkd.torch_model import MHKDModel
from multiad.methods.mhkd.trainer import MHKDTrainer


def build(cfg: RunConfig, device: torch.device) -> MHKDTrainer:
    return MHKDTrainer(cfg, device)


def load(cfg: RunConfig, blob: dict[str, Any], recalibrate: bool) -> MHKDModel:  # noqa: ARG001
    """The student, the distilled teacher and the calibration, all from ``model.pt`` (the
    teacher cache may be gone)."""
    model = MHKDModel(cfg, pdn_teacher(cfg, blob["teacher"], blob["teacher_meta"]))
    model.student.load_state_dict(blob["student"])
    for name, value in blob["norm"].items():
        getattr(model, name).copy_(value)
    return model


def combiner(cfg: RunConfig, meta: dict[str, Any]) -> MapCombiner:  # noqa: ARG001
    """0.5·A_s + 0.5·A_g of the stored (normalised) maps, upsampled, then G_σ."""

    def combine(layers: Sequence[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        return gaussian_blur(pixel_map(layers, size), cfg.mhkd.sigma)

    return combine
