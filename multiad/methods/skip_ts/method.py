"""Skip-TS through the method contract (:mod:`multiad.methods.contract`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from multiad.config import RunConfig
from multiad.gaussian import gaussian_blur
from multiad.methods.base import MapCombiner
from multiad.methods.contract import Method
from multiad.methods.skip_ts.anomaly_map import summed_map
from multiad.methods.skip_ts.config import SkipTSConfig
from multiad.methods.skip_ts.torch_model import SkipTSModel
from multiad.methods.skip_ts.trainer import SkipTSTrainer


class SkipTS(Method):
    name = "skip_ts"
    title = "Skip-TS"
    kind = "trained"
    backbone = "wide_resnet50_2"
    reference = ("Liu, Jiao, Lu & Chen (related system); code: Arktis2022/Skip-TS "
                 "(no licence; not copied)")
    schedule: ClassVar[dict[str, Any]] = {"epochs": 200, "batch_size": 16, "lr": 0.005,
                                          "betas": (0.5, 0.999)}
    Config = SkipTSConfig
    model = SkipTSModel
    runner = SkipTSTrainer
    saved_modules = ("decoder",)
    layer_names = ("M1", "M2", "M3")
    eval_only_keys = ("sigma",)
    order = 8

    def combiner(self, cfg: RunConfig, meta: dict[str, Any]) -> MapCombiner:  # noqa: ARG002
        """The sum of the stored layer maps, upsampled, then G_σ (Eq. 7, §IV-F)."""

        def combine(layers: Sequence[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
            return gaussian_blur(summed_map(layers, size), cfg.skip_ts.sigma)

        return combine
