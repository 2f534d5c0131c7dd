"""MHKD's inference model: the distilled teacher F_t, the teacher's channel normalisation
on the training images (the reference's ``teacher_normalization``), the student F_s and
the validation quantiles of Eq. 9; ``predict`` gives the maps and scores
(``anomaly_map.py``)."""

from __future__ import annotations

import torch
from torch import nn

from multiad.backbones import FrozenBackbone
from multiad.config import RunConfig
from multiad.gaussian import gaussian_blur
from multiad.methods.base import AnomalyOutput
from multiad.methods.mhkd.anomaly_map import branch_maps, combined_map, normalise, pixel_map
from multiad.methods.mhkd.student import MHKDStudent


class MHKDModel(nn.Module):
    """F_t (frozen), its per-channel mean/std on the training images, F_s, the quantiles."""

    def __init__(self, cfg: RunConfig, teacher: FrozenBackbone) -> None:
        super().__init__()
        p = cfg.mhkd
        self.cfg, self.teacher = cfg, teacher
        self.student = MHKDStudent(cfg.data.image_size, p.out_channels, p.width, p.dropout)
        c = p.out_channels
        self.register_buffer("t_mean", torch.zeros(1, c, 1, 1))
        self.register_buffer("t_std", torch.ones(1, c, 1, 1))
        # (q_start, q_end) of A_s and of A_g on the validation images; NaN until calibrated
        self.register_buffer("q", torch.full((2, 2), float("nan")))

    def teacher_features(self, t_raw: torch.Tensor) -> torch.Tensor:
        """f_t: the teacher's output normalised per channel (Eq. 1)."""
        return (t_raw.float() - self.t_mean) / self.t_std

    def raw_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(A_s, A_g) before Eq. 9's normalisation."""
        f_t = self.teacher_features(self.teacher(x)[0])
        f_l, f_g, f_s = self.student(x)
        return branch_maps(f_t, f_l, f_g, f_s)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> AnomalyOutput:
        with torch.autocast(x.device.type, enabled=False):
            a_s, a_g = self.raw_maps(x.float())
            if not torch.isnan(self.q).any():
                a_s, a_g = normalise(a_s, self.q[0].tolist()), normalise(a_g, self.q[1].tolist())
            maps = [a_s, a_g]
            fused = pixel_map(maps, tuple(x.shape[-2:]))
            smoothed = gaussian_blur(fused, self.cfg.mhkd.sigma)
            score = combined_map(maps).flatten(1).amax(dim=1)
        return AnomalyOutput(layer_maps=maps, fused=fused, smoothed=smoothed, score=score)
