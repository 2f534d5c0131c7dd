"""SimpleNet through the method contract (:mod:`multiad.methods.contract`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from multiad.config import RunConfig
from multiad.methods.base import MapCombiner
from multiad.methods.contract import Method
from multiad.methods.simplenet.anomaly_map import simplenet_map
from multiad.methods.simplenet.config import SimpleNetConfig
from multiad.methods.simplenet.torch_model import SimpleNetModel
from multiad.methods.simplenet.trainer import SimpleNetTrainer


class SimpleNet(Method):
    name = "simplenet"
    title = "SimpleNet"
    kind = "trained"
    backbone = "wide_resnet50_2"
    reference = "Liu et al., CVPR 2023; code: DonaldRR/SimpleNet (MIT)"
    # 40 meta epochs × 4 discriminator epochs; lr: the discriminator's Adam
    schedule: ClassVar[dict[str, Any]] = {"epochs": 160, "batch_size": 8, "lr": 2e-4,
                                          "betas": (0.9, 0.999)}
    Config = SimpleNetConfig
    model = SimpleNetModel
    runner = SimpleNetTrainer
    saved_modules = ("adaptor", "discriminator")
    layer_names = ("patch_score",)
    eval_only_keys = ("sigma",)
    order = 6

    def combiner(self, cfg: RunConfig, meta: dict[str, Any]) -> MapCombiner:  # noqa: ARG002
        """The stored patch-score grid upsampled and smoothed, as at test time."""

        def combine(layers: Sequence[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
            return simplenet_map(layers[0], size, cfg.simplenet.sigma)[1]

        return combine
