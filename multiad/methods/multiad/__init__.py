"""Multi-AD (Rahmaniar & Suzuki, arXiv 2602.05426), the paper this package reproduces.

One module per concept, each citing its equations:

| paper | module |
| --- | --- |
| Eq. 1 dilated conv, Table 1, Fig. 2 student | ``student.py``, ``student_efficientnet.py`` |
| Eqs. 2–4 squeeze-and-excitation | ``se.py`` |
| Eq. 5 feature fusion | ``fusion.py`` |
| Fig. 3, Eq. 9 discriminator | ``discriminator.py`` |
| Eqs. 6–8 L_G, Eqs. 10–12 L_D, L_adv, L_S | ``loss.py`` |
| Algorithm 1 | ``trainer.py`` (``MultiADTrainer.step``) |
| Eq. 13 layer maps, Eq. 14 fusion, Eq. 15 score | ``anomaly_map.py`` |
| MFF Ψ (calibrated) | ``mff.py`` |
| T + S + Ψ at test time | ``torch_model.py`` |
| the method contract: settings, saved modules, loading, map combination | ``method.py`` |
"""

from multiad.methods.multiad.discriminator import FeatureDiscriminator
from multiad.methods.multiad.fusion import StageFusion
from multiad.methods.multiad.se import SqueezeExcitation
from multiad.methods.multiad.student import SEDilatedWideResNet
from multiad.methods.multiad.student_efficientnet import SEDilatedEfficientNetLite

__all__ = [
    "FeatureDiscriminator",
    "SEDilatedEfficientNetLite",
    "SEDilatedWideResNet",
    "SqueezeExcitation",
    "StageFusion",
]
