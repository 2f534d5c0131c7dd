"""Multi-AD through the method interface (:mod:`multiad.methods.base`): ``build`` its
trainer, ``load`` a trained run for evaluation, ``combiner`` for maps rebuilt from stored
layer maps (the figures)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from multiad.backbones import build_backbone
from multiad.config import RunConfig
from multiad.gaussian import gaussian_blur
from multiad.methods.base import MapCombiner
from multiad.methods.multiad.anomaly_map import fuse_maps
from multiad.methods.multiad.mff import MultiScaleFusion, recorded_stats
from multiad.methods.multiad.torch_model import MultiADModel
from multiad.methods.multiad.trainer import MultiADTrainer


def build(cfg: RunConfig, device: torch.device) -> MultiADTrainer:
    return MultiADTrainer(cfg, device)


def load(cfg: RunConfig, blob: dict[str, Any], recalibrate: bool) -> MultiADModel:
    """T + S + Ψ of a ``model.pt`` (on the CPU). ``recalibrate``: Ψ from the normal-map
    statistics the run recorded (when a post-training switch was changed), not the saved
    module."""
    model = MultiADModel(cfg.model, build_backbone(cfg.teacher.backbone, cfg.teacher.weights))
    model.student.load_state_dict(blob["student"])
    if model.mff is not None:
        if recalibrate or blob["mff"] is None:
            model.mff.calibrate(recorded_stats(blob["meta"]["map_stats"]))
        else:
            model.mff.load_state_dict(blob["mff"])
    return model


def combiner(cfg: RunConfig, meta: dict[str, Any]) -> MapCombiner:
    """Eqs. 14–15 on stored layer maps: Ψ calibrated from the run's recorded statistics,
    sum (or product), G_σ."""
    mff = None
    if cfg.model.mff:
        mff = MultiScaleFusion(len(meta["map_stats"]), relu=cfg.model.mff_relu)
        mff.calibrate(recorded_stats(meta["map_stats"]))

    def combine(layers: Sequence[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        fused = fuse_maps(list(layers), size, mff, cfg.model.map_fusion)
        return gaussian_blur(fused, cfg.model.sigma)

    return combine
