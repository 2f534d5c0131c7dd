"""PaDiM through the method contract (:mod:`multiad.methods.contract`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from multiad.config import RunConfig
from multiad.methods.base import MapCombiner
from multiad.methods.contract import Method
from multiad.methods.padim.anomaly_map import padim_map
from multiad.methods.padim.config import PadimConfig
from multiad.methods.padim.fitter import PadimFitter, unpack
from multiad.methods.padim.torch_model import PadimModel


class Padim(Method):
    name = "padim"
    title = "PaDiM"
    kind = "fitted"
    backbone = "wide_resnet50_2"
    reference = "Defard et al., ICPR 2021; code: xiahaifeng1995/PaDiM (Apache-2.0)"
    schedule: ClassVar[dict[str, Any]] = {"batch_size": 32}
    Config = PadimConfig
    model = PadimModel
    runner = PadimFitter
    layer_names = ("mahalanobis",)
    eval_only_keys = ("sigma",)
    order = 1

    def load(self, cfg: RunConfig, blob: dict[str, Any], recalibrate: bool = False
             ) -> PadimModel:
        model = super().load(cfg, blob)
        unpack(model.stats, blob["padim"])
        return model

    def combiner(self, cfg: RunConfig, meta: dict[str, Any]) -> MapCombiner:  # noqa: ARG002
        """The stored Mahalanobis grid upsampled and smoothed, as at test time."""

        def combine(layers: Sequence[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
            return padim_map(layers[0], size, cfg.padim.sigma)[1]

        return combine
