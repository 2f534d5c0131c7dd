"""MHKD through the method contract (:mod:`multiad.methods.contract`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from multiad.backbones import FrozenBackbone
from multiad.config import RunConfig
from multiad.gaussian import gaussian_blur
from multiad.methods.base import MapCombiner
from multiad.methods.contract import Method
from multiad.methods.mhkd.anomaly_map import pixel_map
from multiad.methods.mhkd.config import MHKDConfig
from multiad.methods.mhkd.distill import pdn_teacher
from multiad.methods.mhkd.torch_model import MHKDModel
from multiad.methods.mhkd.trainer import MHKDTrainer


class MHKD(Method):
    name = "mhkd"
    title = "MHKD"
    kind = "trained"
    backbone = "wide_resnet101_2"
    reference = ("multi-task hybrid KD (related system); code: Xmh-L/MHKD4AD (no licence, "
                 "incomplete; not copied)")
    # 80,000 steps at batch 1 ≈ 226 epochs of a MVTec LOCO AD category (354 images)
    schedule: ClassVar[dict[str, Any]] = {"epochs": 226, "batch_size": 1, "lr": 1e-4,
                                          "betas": (0.9, 0.999)}
    Config = MHKDConfig
    model = MHKDModel
    runner = MHKDTrainer
    saved_modules = ("student",)
    layer_names = ("structural", "logical")
    eval_only_keys = ("sigma",)
    execution_keys = ("distill_workers",)  # how the teacher's draws are decoded
    order = 9

    def teacher(self, cfg: RunConfig, blob: dict[str, Any] | None = None) -> FrozenBackbone:
        """The distilled PDN, from ``model.pt`` (the teacher cache may be gone)."""
        if blob is None:
            raise ValueError("MHKD's teacher is distilled for a run; it is read from the "
                             "run's model.pt (training distils it: MHKDTrainer)")
        return pdn_teacher(cfg, blob["teacher"], blob["teacher_meta"])

    def load(self, cfg: RunConfig, blob: dict[str, Any], recalibrate: bool = False
             ) -> MHKDModel:
        """The student, the distilled teacher and the calibration, all from ``model.pt``."""
        model = super().load(cfg, blob)
        for name, value in blob["norm"].items():
            getattr(model, name).copy_(value)
        return model

    def combiner(self, cfg: RunConfig, meta: dict[str, Any]) -> MapCombiner:  # noqa: ARG002
        """0.5·A_s + 0.5·A_g of the stored (normalised) maps, upsampled, then G_σ."""

        def combine(layers: Sequence[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
            return gaussian_blur(pixel_map(layers, size), cfg.mhkd.sigma)

        return combine
