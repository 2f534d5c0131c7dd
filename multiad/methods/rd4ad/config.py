"""RD4AD's settings, the reference code's values by default (its schedule — 200 epochs,
batch 16, Adam lr 0.005, betas (0.5, 0.999) — is the method's reference schedule in
``multiad.methods``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RD4ADConfig:
    """RD4AD (Deng & Li, 2022; reference hq-deng/RD4AD)."""

    layers: tuple[int, ...] = (1, 2, 3)  # encoder stages reconstructed (WRN-50-2: layer1..3)
    ocbe_blocks: int = 3  # bottleneck blocks of the one-class embedding (reference: 3)
    decoder_blocks: tuple[int, ...] = (3, 4, 6)  # per decoder stage, deep to shallow
    sigma: float = 4.0  # Gaussian smoothing of the summed map (reference σ = 4)
