"""EfficientAD's settings, and those every method with a distilled PDN teacher shares
(:class:`PDNTeacherConfig`: MHKD's section extends it).

Defaults follow the EfficientAD paper (Batzner et al., WACV 2024): EfficientAD-S
(``pdn=small``; ``pdn=medium`` is EfficientAD-M), 384 teacher channels, unpadded PDNs
(a 256×256 image gives a 56×56 grid), Adam lr 1e-4 with weight decay 1e-5 and the rate
×0.1 for the last 5 % of 70,000 steps at batch 1, p_hard = 0.999, the penalty on natural
photographs, the maps' 0.9 and 0.995 quantiles on held-out training images mapped to 0
and 0.1.
"""

from __future__ import annotations

from dataclasses import dataclass

from multiad.config import RunConfig

PDN_SIZES = ("small", "medium")


@dataclass
class PDNTeacherConfig:
    """A PDN teacher distilled from an ImageNet backbone (``teacher.backbone``), a student
    trained against it, and maps normalised on held-out normal images."""

    pdn: str = "small"  # the PDN of teacher and student: "small" (-S) or "medium" (-M)
    padding: bool = False  # padded convolutions (a 256 image: 64×64 grid, not 56×56)
    out_channels: int = 384  # the teacher's feature channels
    # the inner widths of teacher and student relative to the paper's (1.0); the short CPU
    # profiles use less (said in the profile and on every page through the config)
    width: float = 1.0
    # the student's Adam lr; None: train.lr (the method's reference 1e-4). A profile of a
    # few dozen steps sets more (said in the profile)
    lr: float | None = None
    lr_drop_at: float = 0.95  # fraction of the steps after which the lr is ×0.1
    # the maps' normalisation: these quantiles of the validation maps go to 0 and 0.1
    q_start: float = 0.9
    q_end: float = 0.995
    # the validation images: the dataset's own validation split when it has one (MVTec
    # LOCO AD), else this fraction of the training images, held out (seeded)
    validation_fraction: float = 0.1
    sigma: float = 0.0  # Gaussian smoothing of the pixel map (0: none)
    # --- the teacher: a PDN distilled once from an ImageNet backbone (teacher.backbone) ---
    # a folder of natural images to distil on (ImageNet's train folder in the paper); None:
    # the photographs bundled with scikit-image (offline; said on every page)
    distill_root: str | None = None
    distill_steps: int = 60000  # the pretraining script's (MHKD's reference too)
    distill_batch_size: int = 32
    distill_lr: float = 1e-4
    distill_layers: tuple[int, ...] = (2, 3)  # the source's stages (WRN-101 layer2+3)
    distill_norm_images: int = 10000  # images for the target's channel mean/std
    # processes decoding the draws ahead of the loop (the draws are the same for any
    # number); None: none for ≤ 256 images (kept in memory), else up to 4
    distill_workers: int | None = None

    def resolved(self, cfg: RunConfig) -> PDNTeacherConfig:  # noqa: ARG002
        """Checked."""
        name = type(self).__name__.removesuffix("Config").lower()
        if self.pdn not in PDN_SIZES:
            raise ValueError(f"{name}.pdn {self.pdn!r} unknown; use one of {PDN_SIZES}")
        if not 0 < self.width <= 4:
            raise ValueError(f"{name}.width must lie in (0, 4], got {self.width}")
        if not 0 <= self.q_start < self.q_end <= 1:
            raise ValueError(f"{name}.q_start < {name}.q_end, both in [0, 1]; got "
                             f"{self.q_start}, {self.q_end}")
        if not 0 < self.validation_fraction < 1:
            raise ValueError(f"{name}.validation_fraction must lie in (0, 1), got "
                             f"{self.validation_fraction}")
        if self.distill_workers is not None and self.distill_workers < 0:
            raise ValueError(f"{name}.distill_workers must be ≥ 0 (or null: chosen from the "
                             f"image count), got {self.distill_workers}")
        if self.distill_steps < 1 or self.distill_batch_size < 1:
            raise ValueError(f"{name}.distill_steps and {name}.distill_batch_size must be ≥ 1")
        if len(self.distill_layers) < 1 or any(n not in (1, 2, 3, 4)
                                               for n in self.distill_layers):
            raise ValueError(f"{name}.distill_layers: one or more of the stages 1..4, got "
                             f"{self.distill_layers}")
        return self


@dataclass
class EfficientADConfig(PDNTeacherConfig):
    """EfficientAD (Batzner et al., WACV 2024): student–teacher with the hard feature loss
    and the penalty, plus the autoencoder for logical anomalies."""

    p_hard: float = 0.999  # the hard feature loss keeps the differences above this quantile
    penalty: bool = True  # the student's outputs on natural photographs pushed to zero
    ae_dropout: float = 0.2  # the autoencoder decoder's dropout

    def resolved(self, cfg: RunConfig) -> EfficientADConfig:
        super().resolved(cfg)
        if not 0 < self.p_hard < 1:
            raise ValueError(f"efficientad.p_hard must lie in (0, 1), got {self.p_hard}")
        return self
