"""STFPM through the method contract (:mod:`multiad.methods.contract`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from multiad.config import RunConfig
from multiad.methods.base import MapCombiner
from multiad.methods.contract import Method
from multiad.methods.stfpm.anomaly_map import product_map
from multiad.methods.stfpm.config import STFPMConfig
from multiad.methods.stfpm.torch_model import STFPMModel
from multiad.methods.stfpm.trainer import STFPMTrainer


class STFPM(Method):
    name = "stfpm"
    title = "STFPM"
    kind = "trained"
    backbone = "resnet18"
    reference = "Wang et al., BMVC 2021; code: gdwang08/STFPM (GPL-3.0; not copied)"
    schedule: ClassVar[dict[str, Any]] = {"epochs": 100, "batch_size": 32, "lr": 0.4}
    Config = STFPMConfig
    model = STFPMModel
    runner = STFPMTrainer
    saved_modules = ("student",)
    layer_names = ("L1", "L2", "L3")
    order = 4

    def combiner(self, cfg: RunConfig, meta: dict[str, Any]) -> MapCombiner:  # noqa: ARG002
        """The product of the stored layer maps, upsampled (Eq. 4)."""

        def combine(layers: Sequence[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
            return product_map(layers, size)

        return combine
