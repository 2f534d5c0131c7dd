"""RD4AD through the method contract (:mod:`multiad.methods.contract`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from multiad.config import RunConfig
from multiad.gaussian import gaussian_blur
from multiad.methods.base import MapCombiner
from multiad.methods.contract import Method
from multiad.methods.rd4ad.anomaly_map import summed_map
from multiad.methods.rd4ad.config import RD4ADConfig
from multiad.methods.rd4ad.torch_model import RD4ADModel
from multiad.methods.rd4ad.trainer import RD4ADTrainer


class RD4AD(Method):
    name = "rd4ad"
    title = "RD4AD"
    kind = "trained"
    backbone = "wide_resnet50_2"
    reference = "Deng & Li, CVPR 2022; code: hq-deng/RD4AD (MIT)"
    schedule: ClassVar[dict[str, Any]] = {"epochs": 200, "batch_size": 16, "lr": 0.005,
                                          "betas": (0.5, 0.999)}
    Config = RD4ADConfig
    model = RD4ADModel
    runner = RD4ADTrainer
    saved_modules = ("ocbe", "decoder")
    layer_names = ("L1", "L2", "L3")
    eval_only_keys = ("sigma",)
    order = 5

    def combiner(self, cfg: RunConfig, meta: dict[str, Any]) -> MapCombiner:  # noqa: ARG002
        """The sum of the stored layer maps, upsampled, then G_σ (Eq. 5)."""

        def combine(layers: Sequence[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
            return gaussian_blur(summed_map(layers, size), cfg.rd4ad.sigma)

        return combine
