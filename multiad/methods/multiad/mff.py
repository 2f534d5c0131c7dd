"""Convolution-enhanced multi-scale feature fusion Ψ (paper §3.4, Eq. 14; METHOD_SPEC §7).

Ψ_n = ReLU(BN(conv1×1(M^(n)))) on each one-channel layer map. With no anomaly labels to
learn from, Ψ is *calibrated* on normal training images after training: the 1×1 conv is
the identity (weight 1, bias 0) and BN's running mean/var are the statistics of M^(n) over
the training set, so every scale is standardised to its own normal distribution before the
maps are summed. ``relu=False`` keeps the standardisation but not the cut at the mean.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn


class ScaleRefiner(nn.Module):
    """Ψ for one scale: 1×1 conv → BN → (ReLU)."""

    def __init__(self, relu: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 1)
        # eps far below any real map variance, so Ψ is a true standardisation
        self.bn = nn.BatchNorm2d(1, eps=1e-12)
        self.relu = relu
        with torch.no_grad():
            self.conv.weight.fill_(1.0)
            self.conv.bias.zero_()

    def forward(self, m: torch.Tensor) -> torch.Tensor:
        # the 1×1 one-channel conv is a scalar affine map: computed as one, in the maps'
        # float32 (an autocast region or TF32 convolution would round the maps first)
        y = self.bn(m * self.conv.weight + self.conv.bias.view(1, -1, 1, 1))
        return torch.relu(y) if self.relu else y


class MultiScaleFusion(nn.Module):
    """Ψ_1..Ψ_N plus their calibration from normal maps. Always applied in eval mode."""

    def __init__(self, n_scales: int = 4, relu: bool = True) -> None:
        super().__init__()
        self.refiners = nn.ModuleList([ScaleRefiner(relu) for _ in range(n_scales)])
        self.register_buffer("calibrated", torch.tensor(False))
        self.is_calibrated = False  # host-side copy: forward must not sync (CUDA graphs)
        self.register_load_state_dict_post_hook(MultiScaleFusion._after_load)
        self.requires_grad_(False)
        self.eval()

    @staticmethod
    def _after_load(module: nn.Module, incompatible: object) -> None:  # noqa: ARG004
        module.is_calibrated = bool(module.calibrated)

    def train(self, mode: bool = True) -> MultiScaleFusion:  # noqa: ARG002 - never trained
        return super().train(False)

    @torch.no_grad()
    def calibrate(self, stats: Sequence[tuple[float, float]]) -> None:
        """Set BN_n's running mean/var to the normal-data (mean, var) of M^(n)."""
        for refiner, (mean, var) in zip(self.refiners, stats, strict=True):
            refiner.bn.running_mean.fill_(mean)
            refiner.bn.running_var.fill_(var)
        self.calibrated.fill_(True)
        self.is_calibrated = True

    def forward(self, maps: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        if not self.is_calibrated:
            raise RuntimeError("MFF is not calibrated: call calibrate() with the normal-map "
                               "statistics of the training images (MapMoments)")
        return [ref(m) for ref, m in zip(self.refiners, maps, strict=True)]


def recorded_stats(map_stats: Sequence[Mapping[str, float]]) -> list[tuple[float, float]]:
    """The (mean, var) pairs of ``calibrate`` from a run's recorded ``map_stats``."""
    return [(float(s["mean"]), float(s["var"])) for s in map_stats]


class MapMoments:
    """Streaming float64 mean/variance of every layer map over a set of normal images.

    Batches are merged with Chan et al.'s pairwise update, so the result does not depend
    on how the images were batched (up to float64 rounding).
    """

    def __init__(self, n_scales: int = 4) -> None:
        self.count = [0] * n_scales
        self.mean = [0.0] * n_scales
        self.m2 = [0.0] * n_scales

    def update(self, maps: Sequence[torch.Tensor]) -> None:
        for n, m in enumerate(maps):
            m64 = m.detach().double()
            nb = m64.numel()
            mean_b = float(m64.mean())
            m2_b = float(((m64 - mean_b) ** 2).sum())
            na = self.count[n]
            delta = mean_b - self.mean[n]
            total = na + nb
            self.mean[n] += delta * nb / total
            self.m2[n] += m2_b + delta * delta * na * nb / total
            self.count[n] = total

    def result(self) -> list[tuple[float, float]]:
        """(mean, population variance) per scale."""
        if 0 in self.count:
            raise RuntimeError("no maps seen: cannot calibrate MFF")
        return [(mu, m2 / c) for mu, m2, c in zip(self.mean, self.m2, self.count, strict=True)]
