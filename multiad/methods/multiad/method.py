"""Multi-AD through the method contract (:mod:`multiad.methods.contract`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from multiad.config import RunConfig
from multiad.gaussian import gaussian_blur
from multiad.methods.base import MapCombiner
from multiad.methods.contract import Method
from multiad.methods.multiad.anomaly_map import fuse_maps
from multiad.methods.multiad.config import MultiADConfig
from multiad.methods.multiad.mff import MultiScaleFusion, recorded_stats
from multiad.methods.multiad.torch_model import MultiADModel
from multiad.methods.multiad.trainer import MultiADTrainer


class MultiAD(Method):
    name = "multiad"
    title = "Multi-AD"
    kind = "trained"
    backbone = "wide_resnet50_2"
    reference = "Rahmaniar & Suzuki, arXiv 2602.05426 (the paper reproduced here)"
    schedule: ClassVar[dict[str, Any]] = {"epochs": 250, "batch_size": 16, "lr": 1e-3,
                                          "betas": (0.9, 0.999)}
    Config = MultiADConfig
    model = MultiADModel
    runner = MultiADTrainer
    saved_modules = ("student",)
    layer_names = ("M1", "M2", "M3", "M4")
    eval_only_keys = ("mff", "mff_relu", "map_fusion", "sigma")
    order = 0
    former_sections = ("model",)
    moved_keys: ClassVar[dict[str, str]] = {"backbone": "teacher.backbone",
                                            "teacher_weights": "teacher.weights"}

    def load(self, cfg: RunConfig, blob: dict[str, Any], recalibrate: bool = False
             ) -> MultiADModel:
        """T + S + Ψ of a ``model.pt`` (on the CPU). ``recalibrate``: Ψ from the normal-map
        statistics the run recorded (when a post-training switch was changed), not the
        saved module."""
        model = super().load(cfg, blob)
        if model.mff is not None:
            if recalibrate or blob["mff"] is None:
                model.mff.calibrate(recorded_stats(blob["meta"]["map_stats"]))
            else:
                model.mff.load_state_dict(blob["mff"])
        return model

    def combiner(self, cfg: RunConfig, meta: dict[str, Any]) -> MapCombiner:
        """Eqs. 14–15 on stored layer maps: Ψ calibrated from the run's recorded
        statistics, sum (or product), G_σ."""
        p = cfg.multiad
        mff = None
        if p.mff:
            mff = MultiScaleFusion(len(meta["map_stats"]), relu=p.mff_relu)
            mff.calibrate(recorded_stats(meta["map_stats"]))

        def combine(layers: Sequence[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
            return gaussian_blur(fuse_maps(list(layers), size, mff, p.map_fusion), p.sigma)

        return combine
