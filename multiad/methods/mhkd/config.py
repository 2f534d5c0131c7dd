"""MHKD's settings: the reference code's values by default (its schedule — batch 1, Adam
1e-4 with weight decay 1e-5, the learning rate ×0.1 for the last 5 % of the steps — is the
method's reference schedule in ``multiad.methods``; 80,000 steps at batch 1 are about 226
epochs of an MVTec LOCO AD category, 354 training images on average)."""

from __future__ import annotations

from dataclasses import dataclass

from multiad.config import RunConfig


@dataclass
class MHKDConfig:
    """MHKD (multi-task hybrid knowledge distillation; reference Xmh-L/MHKD4AD)."""

    out_channels: int = 384  # the teacher's (and every student branch's) feature channels
    # the inner widths of teacher and student relative to the reference's (1.0); the short
    # CPU profiles use less (said in the profile and on every page through the config)
    width: float = 1.0
    dropout: float = 0.2  # the decoders' dropout (paper §IV-A)
    # the student's Adam lr; None: train.lr, the method's reference 1e-4 (80,000 steps).
    # A profile of a few dozen steps sets more (at 1e-4 Adam moves a weight by at most
    # 1e-4 per step: nothing is learnt in 36 steps), said in the profile
    lr: float | None = None
    # Eq. 8's weights α·L_L + β·L_G + γ·L_SG: the code's 1, 1, 2 (the paper gives none)
    alpha: float = 1.0
    beta: float = 1.0
    gamma: float = 2.0
    lr_drop_at: float = 0.95  # fraction of the steps after which the lr is ×0.1
    # Eq. 9's normalisation: quantiles of the validation maps mapped to 0 and 0.1
    q_start: float = 0.9
    q_end: float = 0.995
    # the validation images: the dataset's own validation split when it has one (MVTec
    # LOCO AD), else this fraction of the training images, held out (the reference's rule
    # for MVTec AD: 10 %, a seeded random split)
    validation_fraction: float = 0.1
    sigma: float = 2.0  # Gaussian smoothing of the pixel map (the reference's saved maps)
    # --- the teacher: a PDN distilled once from an ImageNet backbone (teacher.backbone) ---
    # a folder of natural images to distil on (ImageNet's train folder in the paper); None:
    # the photographs bundled with scikit-image (offline; said on every page)
    distill_root: str | None = None
    distill_steps: int = 60000  # the reference's
    distill_batch_size: int = 32
    distill_lr: float = 1e-4
    distill_layers: tuple[int, ...] = (2, 3)  # the source's stages (reference layer2+3)
    distill_norm_images: int = 10000  # images for the target's channel mean/std
    # processes decoding the draws ahead of the loop (the draws are the same for any
    # number); None: none for ≤ 256 images (kept in memory), else up to 4
    distill_workers: int | None = None

    def resolved(self, cfg: RunConfig) -> MHKDConfig:  # noqa: ARG002
        """Checked."""
        if not 0 < self.width <= 4:
            raise ValueError(f"mhkd.width must lie in (0, 4], got {self.width}")
        if not 0 <= self.q_start < self.q_end <= 1:
            raise ValueError("mhkd.q_start < mhkd.q_end, both in [0, 1]; got "
                             f"{self.q_start}, {self.q_end}")
        if not 0 < self.validation_fraction < 1:
            raise ValueError("mhkd.validation_fraction must lie in (0, 1), got "
                             f"{self.validation_fraction}")
        if self.distill_workers is not None and self.distill_workers < 0:
            raise ValueError("mhkd.distill_workers must be ≥ 0 (or null: chosen from the "
                             f"image count), got {self.distill_workers}")
        if self.distill_steps < 1 or self.distill_batch_size < 1:
            raise ValueError("mhkd.distill_steps and mhkd.distill_batch_size must be ≥ 1")
        if len(self.distill_layers) < 1 or any(n not in (1, 2, 3, 4)
                                               for n in self.distill_layers):
            raise ValueError("mhkd.distill_layers: one or more of the stages 1..4, got "
                             f"{self.distill_layers}")
        return self
