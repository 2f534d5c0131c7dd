"""EfficientAD's inference model: the distilled PDN teacher (with its channel statistics
and the maps' quantiles: :class:`PDNStudentModel`), the student PDN with twice the
teacher's channels (the first half imitates the teacher, the second the autoencoder) and
the autoencoder; ``predict`` gives the maps and score (``anomaly_map.py``)."""

from __future__ import annotations

import torch

from multiad.backbones import FrozenBackbone
from multiad.config import RunConfig
from multiad.methods.base import AnomalyOutput
from multiad.methods.efficientad.anomaly_map import (
    pixel_map,
    smoothed,
    squared_difference_map,
)
from multiad.methods.efficientad.autoencoder import Autoencoder, output_side
from multiad.methods.efficientad.pdn import build_pdn
from multiad.methods.efficientad.student_teacher import PDNStudentModel


class EfficientADModel(PDNStudentModel):
    def __init__(self, cfg: RunConfig, teacher: FrozenBackbone) -> None:
        p = cfg.efficientad
        super().__init__(cfg, teacher, p.out_channels)
        self.student = build_pdn(p.pdn, 2 * p.out_channels, p.width, p.padding)
        side = output_side(self.student, cfg.data.image_size)
        self.autoencoder = Autoencoder(p.out_channels, cfg.data.image_size, (side, side),
                                       p.ae_dropout, p.width)

    def raw_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(M_ST, M_AE) before the quantile normalisation."""
        c = self.cfg.efficientad.out_channels
        t = self.teacher_features(self.teacher(x)[0])
        s = self.student(x)
        a = self.autoencoder(x)
        return squared_difference_map(t, s[:, :c]), squared_difference_map(a, s[:, c:])

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> AnomalyOutput:
        with torch.autocast(x.device.type, enabled=False):
            maps = self.normalised_maps(x)
            fused = pixel_map(maps, tuple(x.shape[-2:]))
            smooth = smoothed(fused, self.cfg.efficientad.sigma)
        return AnomalyOutput(layer_maps=maps, fused=fused, smoothed=smooth,
                             score=smooth.flatten(1).amax(dim=1))
