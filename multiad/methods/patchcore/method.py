"""PatchCore through the method contract (:mod:`multiad.methods.contract`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from multiad.config import RunConfig
from multiad.methods.base import MapCombiner
from multiad.methods.contract import Method
from multiad.methods.patchcore.anomaly_map import patchcore_map
from multiad.methods.patchcore.config import PatchCoreConfig
from multiad.methods.patchcore.fitter import PatchCoreFitter
from multiad.methods.patchcore.torch_model import PatchCoreModel


class PatchCore(Method):
    name = "patchcore"
    title = "PatchCore"
    kind = "fitted"
    backbone = "wide_resnet50_2"
    reference = ("Roth et al., CVPR 2022; code: amazon-science/patchcore-inspection "
                 "(Apache-2.0)")
    schedule: ClassVar[dict[str, Any]] = {"batch_size": 8}
    Config = PatchCoreConfig
    model = PatchCoreModel
    runner = PatchCoreFitter
    layer_names = ("patch_score",)
    eval_only_keys = ("sigma",)
    order = 2

    def load(self, cfg: RunConfig, blob: dict[str, Any], recalibrate: bool = False
             ) -> PatchCoreModel:
        bank = blob["patchcore"]["bank"]
        model = PatchCoreModel(cfg, self.teacher(cfg, blob), len(bank))
        model.bank.copy_(bank)
        return model

    def combiner(self, cfg: RunConfig, meta: dict[str, Any]) -> MapCombiner:  # noqa: ARG002
        """The stored patch-score grid upsampled and smoothed, as at test time."""

        def combine(layers: Sequence[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
            return patchcore_map(layers[0], size, cfg.patchcore.sigma)[1]

        return combine
