"""MKD through the method contract (:mod:`multiad.methods.contract`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from multiad.config import RunConfig
from multiad.gaussian import gaussian_blur
from multiad.methods.base import MapCombiner
from multiad.methods.contract import Method
from multiad.methods.mkd.config import MKDConfig
from multiad.methods.mkd.torch_model import MKDModel
from multiad.methods.mkd.trainer import MKDTrainer


class MKD(Method):
    name = "mkd"
    title = "MKD"
    kind = "trained"
    backbone = "vgg16"
    reference = ("Salehi et al., CVPR 2021; code: rohban-lab/Knowledge_Distillation_AD "
                 "(no licence; not copied)")
    schedule: ClassVar[dict[str, Any]] = {"epochs": 601, "batch_size": 64, "lr": 1e-3,
                                          "betas": (0.9, 0.999)}
    Config = MKDConfig
    model = MKDModel
    runner = MKDTrainer
    saved_modules = ("student",)
    layer_names = ("map",)
    eval_only_keys = ("localization", "sigma")
    order = 7

    def combiner(self, cfg: RunConfig, meta: dict[str, Any]) -> MapCombiner:  # noqa: ARG002
        """The stored unsmoothed map (at the input size), smoothed as at test time."""

        def combine(layers: Sequence[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:  # noqa: ARG001
            return gaussian_blur(layers[0][:, 0].float(), cfg.mkd.sigma)

        return combine
