"""MHKD through the method contract (:mod:`multiad.methods.contract`): EfficientAD's
(its distilled teacher, loading, map combination), with its own student and schedule."""

from __future__ import annotations

from typing import Any, ClassVar

from multiad.methods.efficientad.method import EfficientAD
from multiad.methods.mhkd.config import MHKDConfig
from multiad.methods.mhkd.torch_model import MHKDModel
from multiad.methods.mhkd.trainer import MHKDTrainer


class MHKD(EfficientAD):
    name = "mhkd"
    title = "MHKD"
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
    order = 9
