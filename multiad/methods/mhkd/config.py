"""MHKD's settings: the reference code's values by default (its schedule — batch 1, Adam
1e-4 with weight decay 1e-5, the learning rate ×0.1 for the last 5 % of the steps — is the
method's reference schedule in ``multiad.methods``; 80,000 steps at batch 1 are about 226
epochs of an MVTec LOCO AD category, 354 training images on average). The teacher's and
the maps' settings are EfficientAD's (``PDNTeacherConfig``), with MHKD's own PDN."""

from __future__ import annotations

from dataclasses import dataclass

from multiad.methods.efficientad.config import PDNTeacherConfig


@dataclass
class MHKDConfig(PDNTeacherConfig):
    """MHKD (multi-task hybrid knowledge distillation; reference Xmh-L/MHKD4AD)."""

    pdn: str = "medium"  # the reference's get_pdn_medium(384, padding=True)
    padding: bool = True
    sigma: float = 2.0  # Gaussian smoothing of the pixel map (the reference's saved maps)
    dropout: float = 0.2  # the decoders' dropout (paper §IV-A)
    # Eq. 8's weights α·L_L + β·L_G + γ·L_SG: the code's 1, 1, 2 (the paper gives none)
    alpha: float = 1.0
    beta: float = 1.0
    gamma: float = 2.0
