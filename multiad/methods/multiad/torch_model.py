"""The Multi-AD inference model: frozen teacher T + student S + calibrated MFF Ψ.

The discriminator is a training-time module only (METHOD_SPEC §5) and lives in the
trainer (:mod:`multiad.methods.multiad.trainer`).
"""

from __future__ import annotations

import torch
from torch import nn

from multiad.backbones import FrozenBackbone
from multiad.config import RunConfig
from multiad.gaussian import gaussian_blur
from multiad.methods.base import AnomalyOutput
from multiad.methods.multiad.anomaly_map import fuse_maps, image_score, layer_maps
from multiad.methods.multiad.mff import MultiScaleFusion
from multiad.methods.multiad.students import build_student


class MultiADModel(nn.Module):
    """T, S and Ψ together; ``forward`` returns the feature pairs, ``predict`` the maps."""

    def __init__(self, cfg: RunConfig, teacher: FrozenBackbone) -> None:
        super().__init__()
        self.cfg = cfg
        self.teacher = teacher
        p = cfg.multiad
        self.student = build_student(p, self.teacher)
        self.mff = MultiScaleFusion(len(self.teacher.feature_info.channels),
                                    relu=p.mff_relu) if p.mff else None

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        return self.teacher(x), self.student(x)

    @torch.no_grad()
    def maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The raw layer maps M^(n) for a batch (student in whatever mode it is in)."""
        t, s = self(x)
        return layer_maps(t, s)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> AnomalyOutput:
        """Eqs. 13–15 for a normalised N×3×H×W batch. Call ``eval()`` first.

        The networks run under the caller's autocast (bf16 on a GPU); the maps, Ψ, the
        fusion and the smoothing are float32 whatever it is: bf16 keeps 8 bits of a map
        value, which would merge the pixels that pixel AUROC and AUPRO rank into ties.
        """
        m = [t.float() for t in self.maps(x)]
        with torch.autocast(x.device.type, enabled=False):
            fused = fuse_maps(m, tuple(x.shape[-2:]), self.mff, self.cfg.multiad.map_fusion)
            smoothed = gaussian_blur(fused, self.cfg.multiad.sigma)
        return AnomalyOutput(layer_maps=m, fused=fused, smoothed=smoothed,
                             score=image_score(smoothed))
