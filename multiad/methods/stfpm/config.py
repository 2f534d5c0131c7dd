"""STFPM's settings, the reference code's values by default (its schedule — 100 epochs,
batch 32, SGD lr 0.4 — is the method's reference schedule in ``multiad.methods``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class STFPMConfig:
    """STFPM (Wang et al., 2021; reference gdwang08/STFPM)."""

    layers: tuple[int, ...] = (1, 2, 3)  # backbone stages matched (ResNet-18: layer1..3)
    momentum: float = 0.9  # SGD
    weight_decay: float = 1e-4  # SGD (anomalib uses 1e-3)
