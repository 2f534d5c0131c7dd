"""Networks of Multi-AD: students S (SE + dilation + fusion) per backbone family, and the
discriminator D. The frozen teachers are in :mod:`multiad.backbones`."""

from multiad.models.discriminator import FeatureDiscriminator
from multiad.models.fusion import StageFusion
from multiad.models.se import SqueezeExcitation
from multiad.models.student import SEDilatedWideResNet
from multiad.models.student_efficientnet import SEDilatedEfficientNetLite

__all__ = [
    "FeatureDiscriminator",
    "SEDilatedEfficientNetLite",
    "SEDilatedWideResNet",
    "SqueezeExcitation",
    "StageFusion",
]
