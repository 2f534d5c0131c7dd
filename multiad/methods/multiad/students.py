"""Which student Multi-AD builds for a teacher: one per backbone family (METHOD_SPEC §3).

``wide_resnet`` → :class:`SEDilatedWideResNet` (the paper's student, Table 1);
``efficientnet_lite`` → :class:`SEDilatedEfficientNetLite` (the same three changes on the
offline backbone's own architecture).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from multiad.backbones import BACKBONES, FrozenBackbone, get_spec
from multiad.methods.multiad.config import MultiADConfig
from multiad.methods.multiad.student import SEDilatedWideResNet
from multiad.methods.multiad.student_efficientnet import SEDilatedEfficientNetLite


def _wide_resnet(cfg: MultiADConfig, teacher: FrozenBackbone) -> nn.Module:  # noqa: ARG001
    return SEDilatedWideResNet(se=cfg.se, dilation_rates=tuple(cfg.dilation_rates),
                               fusion=cfg.fusion, se_reduction=cfg.se_reduction)


def _efficientnet_lite(cfg: MultiADConfig, teacher: FrozenBackbone) -> nn.Module:
    return SEDilatedEfficientNetLite(teacher.body, se=cfg.se,
                                     dilation_rates=tuple(cfg.dilation_rates),
                                     fusion=cfg.fusion, se_reduction=cfg.se_reduction)


STUDENTS: dict[str, Callable[[MultiADConfig, FrozenBackbone], nn.Module]] = {
    "wide_resnet": _wide_resnet,
    "efficientnet_lite": _efficientnet_lite,
}


def build_student(cfg: MultiADConfig, teacher: FrozenBackbone) -> nn.Module:
    """A randomly initialised student for ``teacher`` (seed the RNG first)."""
    family = get_spec(teacher.name).family
    if family not in STUDENTS:
        raise ValueError(f"Multi-AD has no student for the {family} family of backbone "
                         f"{teacher.name!r}; use one of "
                         + ", ".join(n for n, s in BACKBONES.items() if s.family in STUDENTS))
    return STUDENTS[family](cfg, teacher)
