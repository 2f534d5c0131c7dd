"""MKD's settings, the reference code's values by default (its schedule — 601 epochs,
batch 64, Adam 1e-3 — is the method's reference schedule in ``multiad.methods``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from multiad.config import RunConfig

LOCALIZATIONS = ("gbp", "gradients", "features")
INPUTS = ("unnormalized", "teacher")


@dataclass
class MKDConfig:
    """MKD (Salehi et al., 2021; reference rohban-lab/Knowledge_Distillation_AD)."""

    # λ of the value (MSE) term; None: the reference's per-dataset value — 0.5 on MVTec AD,
    # 0.01 on every other set (its config: "mvtec: 0.5, others: 0.01"), made concrete when
    # the run is configured (a saved config keeps its value)
    lamda: float | None = None
    loss_taps: tuple[int, ...] = (1, 2, 3, 4)  # backbone stages in the training loss
    score_taps: tuple[int, ...] = (2, 3, 4)  # … and in the detection score and saliency
    thin_width: int = 16  # the cloner's width except at the taps (reference config 'B')
    # the network input: "unnormalized" = images in [0, 1] (the reference's MVTec AD and
    # retina pipeline: ToTensor only), "teacher" = the teacher's mean/std normalisation
    input: str = "unnormalized"
    # the anomaly map: "gbp" = guided backpropagation (the reference's default), "gradients"
    # = vanilla gradients, "features" = per-position 1 − cos at the score taps (an
    # interpretation beside the paper's, `book/baselines.md`)
    localization: str = "gbp"
    sigma: float = 4.0  # Gaussian smoothing of the map

    def resolved(self, cfg: RunConfig) -> MKDConfig:
        """Checked, with λ made concrete for the run's dataset."""
        if self.localization not in LOCALIZATIONS:
            raise ValueError(f"mkd.localization {self.localization!r} unknown; use one of "
                             f"{', '.join(LOCALIZATIONS)}")
        if self.input not in INPUTS:
            raise ValueError(f"mkd.input {self.input!r} unknown; use one of {', '.join(INPUTS)}")
        if not self.loss_taps or not self.score_taps or any(
                t not in (1, 2, 3, 4) for t in (*self.loss_taps, *self.score_taps)):
            raise ValueError("mkd.loss_taps and mkd.score_taps each list one or more of the "
                             "stages 1..4")
        if self.lamda is None:
            return dataclasses.replace(self, lamda=0.5 if cfg.data.kind == "mvtec" else 0.01)
        return self
