"""Networks of Multi-AD: teacher T, student S (SE + dilation + fusion), discriminator D."""

from multiad.models.discriminator import FeatureDiscriminator
from multiad.models.fusion import StageFusion
from multiad.models.se import SqueezeExcitation
from multiad.models.student import SEDilatedWideResNet
from multiad.models.teacher import FrozenTeacher

__all__ = [
    "FeatureDiscriminator",
    "FrozenTeacher",
    "SEDilatedWideResNet",
    "SqueezeExcitation",
    "StageFusion",
]
