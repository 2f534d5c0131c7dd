"""EfficientAD through the method contract (:mod:`multiad.methods.contract`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from multiad.backbones import FrozenBackbone
from multiad.config import RunConfig
from multiad.methods.base import MapCombiner
from multiad.methods.contract import Method
from multiad.methods.efficientad.anomaly_map import pixel_map, smoothed
from multiad.methods.efficientad.config import EfficientADConfig
from multiad.methods.efficientad.distill import distil, distillation_key, pdn_teacher
from multiad.methods.efficientad.torch_model import EfficientADModel
from multiad.methods.efficientad.trainer import EfficientADTrainer


class EfficientAD(Method):
    name = "efficientad"
    title = "EfficientAD"
    kind = "trained"
    backbone = "wide_resnet101_2"  # the network its PDN teacher is distilled from
    reference = ("Batzner, Heckler & König, WACV 2024 (modern peer; no official code: "
                 "checked against nelson1425/EfficientAD and anomalib, both Apache-2.0; "
                 "not copied)")
    # 70,000 steps at batch 1 ≈ 322 epochs of an MVTec AD category's training images
    # less the 10 % held out (241.9 images on average, 217.7 trained on)
    schedule: ClassVar[dict[str, Any]] = {"epochs": 322, "batch_size": 1, "lr": 1e-4,
                                          "betas": (0.9, 0.999)}
    Config = EfficientADConfig
    model = EfficientADModel
    runner = EfficientADTrainer
    saved_modules = ("student", "autoencoder")
    layer_names = ("student_teacher", "autoencoder")
    eval_only_keys = ("sigma",)
    execution_keys = ("distill_workers",)  # how the teacher's draws are decoded
    order = 10

    def teacher(self, cfg: RunConfig, blob: dict[str, Any] | None = None) -> FrozenBackbone:
        """The distilled PDN, from ``model.pt`` (the teacher cache may be gone)."""
        if blob is None:
            raise ValueError(f"{self.title}'s teacher is distilled for a run; it is read "
                             "from the run's model.pt (training distils it)")
        return pdn_teacher(cfg, blob["teacher"], blob["teacher_meta"])

    def preparation_key(self, cfg: RunConfig) -> str | None:
        """Its distilled PDN teacher: one per source network and distillation settings."""
        return distillation_key(cfg)

    def prepare(self, cfg: RunConfig, device: torch.device, progress: bool = False) -> None:
        """Distil the PDN teacher into the cache (a no-op when it is there)."""
        distil(cfg.validate(), device, progress)

    def load(self, cfg: RunConfig, blob: dict[str, Any], recalibrate: bool = False) -> Any:
        """The student(s), the distilled teacher and the calibration, from ``model.pt``."""
        model = super().load(cfg, blob)
        for name, value in blob["norm"].items():
            getattr(model, name).copy_(value)
        return model

    def combiner(self, cfg: RunConfig, meta: dict[str, Any]) -> MapCombiner:  # noqa: ARG002
        """0.5·M_ST + 0.5·M_AE of the stored (normalised) maps, padded and upsampled."""
        sigma = self.settings(cfg).sigma

        def combine(layers: Sequence[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
            return smoothed(pixel_map(layers, size), sigma)

        return combine
