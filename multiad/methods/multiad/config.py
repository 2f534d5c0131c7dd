"""Multi-AD's settings: its section ``multiad`` of the run configuration (``model`` before
version 0.3; still read). Every point the paper leaves open is fixed here to METHOD_SPEC's
default; the book's interpretations page explains each."""

from __future__ import annotations

from dataclasses import dataclass

from multiad.config import RunConfig


@dataclass
class MultiADConfig:
    """Multi-AD's architecture and map switches (METHOD_SPEC §3–§7); Table 4 = se,
    discriminator, mff."""

    se: bool = True
    se_reduction: int = 16
    dilation_rates: tuple[int, int, int, int] = (1, 2, 4, 8)
    fusion: bool = True
    discriminator: bool = True
    d_stages: tuple[int, ...] = (4,)
    d_dropout: float = 0.3
    # λ of Eq. 12, which the paper leaves open: "balanced" sets it every step so that the
    # adversarial gradient at the features D sees is ``adv_ratio`` times L_G's there
    # (loss.balanced_lambda); "fixed" uses ``lambda_adv`` as is (the first choice, 0.1)
    lambda_rule: str = "balanced"
    adv_ratio: float = 0.1
    lambda_adv: float = 0.1
    d_lr: float | None = None  # D's Adam learning rate; None → S's (train.lr)
    mff: bool = True
    mff_relu: bool = True
    map_fusion: str = "sum"  # "sum" (Eq. 14) or "product" (anomalib STFPM / BMAD RD)
    sigma: float = 4.0

    def resolved(self, cfg: RunConfig) -> MultiADConfig:  # noqa: ARG002 (the section hook)
        """Checked (every value in its range)."""
        if self.map_fusion not in ("sum", "product"):
            raise ValueError("multiad.map_fusion must be 'sum' or 'product'")
        if any(s not in (1, 2, 3, 4) for s in self.d_stages):
            raise ValueError("multiad.d_stages lists stages 1..4")
        if self.lambda_rule not in ("balanced", "fixed"):
            raise ValueError("multiad.lambda_rule must be 'balanced' or 'fixed'")
        if self.adv_ratio < 0 or self.lambda_adv < 0:
            raise ValueError("multiad.adv_ratio and multiad.lambda_adv must be ≥ 0")
        return self
