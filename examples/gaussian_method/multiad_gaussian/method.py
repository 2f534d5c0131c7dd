"""Per-layer Gaussian feature distance, from its own package.

At every position of teacher stages 1–3, the normal training features' per-channel mean
μ and variance σ² (one pass, no training). A test feature f scores
d = mean_c (f_c − μ_c)² / σ_c² per layer (a diagonal Mahalanobis distance, as PaDiM's
with a diagonal covariance); the layers' maps are upsampled, summed and smoothed
(Gaussian σ = 4); the image score is the map's maximum.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from multiad.backbones import FrozenBackbone
from multiad.config import RunConfig
from multiad.engine.trainer import FitterBase
from multiad.gaussian import gaussian_blur
from multiad.methods.base import AnomalyOutput, MapCombiner
from multiad.methods.contract import Method


@dataclass
class GaussianConfig:
    """Its section of the run configuration: ``--set gaussian.sigma=2``."""

    layers: tuple[int, ...] = (1, 2, 3)  # teacher stages
    var_floor: float = 0.01  # σ² ≥ var_floor · (the layer's mean σ²)
    sigma: float = 4.0  # smoothing of the summed map


def combine(layers: Sequence[torch.Tensor], size: tuple[int, int], sigma: float
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum of the upsampled layer maps, its smoothing): N×H×W each."""
    up = sum(F.interpolate(m.float(), size=size, mode="bilinear", align_corners=False)[:, 0]
             for m in layers)
    return up, gaussian_blur(up, sigma)


class GaussianModel(nn.Module):
    """The frozen teacher and, per layer, μ and σ² at every position (``stats``)."""

    def __init__(self, cfg: RunConfig, teacher: FrozenBackbone) -> None:
        super().__init__()
        self.cfg, self.teacher = cfg, teacher
        info, p = teacher.feature_info, cfg.gaussian
        sides = info.spatial(cfg.data.image_size)
        self.stats = nn.ParameterDict({
            f"{kind}{n}": nn.Parameter(torch.zeros(info.channels[n - 1], sides[n - 1],
                                                   sides[n - 1]), requires_grad=False)
            for n in p.layers for kind in ("mean", "var")})

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> AnomalyOutput:
        feats, p = self.teacher(x.float()), self.cfg.gaussian
        maps = [((feats[n - 1].float() - self.stats[f"mean{n}"]) ** 2
                 / self.stats[f"var{n}"]).mean(1, keepdim=True) for n in p.layers]
        up, smoothed = combine(maps, tuple(x.shape[-2:]), p.sigma)
        return AnomalyOutput(layer_maps=maps, fused=up, smoothed=smoothed,
                             score=smoothed.flatten(1).amax(1))


class GaussianFitter(FitterBase):
    """One pass over the training features: running sums in float64."""

    def fit(self, images_u8: torch.Tensor, progress: bool = True) -> dict[str, Any]:
        p, stats = self.cfg.gaussian, self.model.stats
        sums: dict[int, list[torch.Tensor]] = {}
        for _, feats in self.batches(images_u8, progress, desc="Gaussian statistics"):
            for n in p.layers:
                f = feats[n - 1].double()
                s = sums.setdefault(n, [torch.zeros_like(f[0]), torch.zeros_like(f[0])])
                s[0] += f.sum(0)
                s[1] += (f * f).sum(0)
        for n, (s1, s2) in sums.items():
            mean = s1 / len(images_u8)
            var = (s2 / len(images_u8) - mean**2).clamp_min(0)
            stats[f"mean{n}"].copy_(mean)
            stats[f"var{n}"].copy_(var.clamp_min(p.var_floor * var.mean()))
        return {"gaussian": {"layers": list(p.layers), "images": len(images_u8)}}


class LayerGaussian(Method):
    name = "gaussian"
    title = "Layer Gaussian"
    kind = "fitted"
    backbone = "wide_resnet50_2"
    reference = "worked example of a method plugin (examples/gaussian_method)"
    schedule = {"batch_size": 16}
    Config = GaussianConfig
    model = GaussianModel
    runner = GaussianFitter
    saved_modules = ("stats",)
    layer_names = ("L1", "L2", "L3")
    eval_only_keys = ("sigma",)

    def combiner(self, cfg: RunConfig, meta: dict[str, Any]) -> MapCombiner:  # noqa: ARG002
        """The stored layer maps summed, upsampled and smoothed, as at test time."""
        return lambda layers, size: combine(layers, size, cfg.gaussian.sigma)[1]
