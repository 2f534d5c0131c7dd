"""MHKD's inference model: the distilled teacher F_t with its channel normalisation on the
training images (the reference's ``teacher_normalization``) and the validation quantiles
of Eq. 9 (EfficientAD's :class:`PDNStudentModel`), and the student F_s; ``predict`` gives
the maps and scores (``anomaly_map.py``)."""

from __future__ import annotations

import torch

from multiad.backbones import FrozenBackbone
from multiad.config import RunConfig
from multiad.methods.base import AnomalyOutput
from multiad.methods.efficientad.anomaly_map import combined_map, pixel_map, smoothed
from multiad.methods.efficientad.student_teacher import PDNStudentModel
from multiad.methods.mhkd.anomaly_map import branch_maps
from multiad.methods.mhkd.student import MHKDStudent


class MHKDModel(PDNStudentModel):
    """F_t (frozen), its per-channel mean/std on the training images, F_s, the quantiles."""

    def __init__(self, cfg: RunConfig, teacher: FrozenBackbone) -> None:
        p = cfg.mhkd
        super().__init__(cfg, teacher, p.out_channels)
        self.student = MHKDStudent(cfg.data.image_size, p.out_channels, p.width, p.dropout)

    def raw_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(A_s, A_g) before Eq. 9's normalisation."""
        f_t = self.teacher_features(self.teacher(x)[0])
        f_l, f_g, f_s = self.student(x)
        return branch_maps(f_t, f_l, f_g, f_s)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> AnomalyOutput:
        with torch.autocast(x.device.type, enabled=False):
            maps = self.normalised_maps(x)
            fused = pixel_map(maps, tuple(x.shape[-2:]))
            smooth = smoothed(fused, self.cfg.mhkd.sigma)
            score = combined_map(maps).flatten(1).amax(dim=1)
        return AnomalyOutput(layer_maps=maps, fused=fused, smoothed=smooth, score=score)
