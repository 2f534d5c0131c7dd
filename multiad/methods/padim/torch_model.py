"""PaDiM's embedding and its per-position Gaussian statistics (paper §3.1–3.2).

The embedding of an image is, at every position of the first listed stage's grid, the
concatenation of the listed stages' features (deeper stages nearest-neighbour upsampled:
the reference's ``embedding_concat``, an unfold/fold that copies each deeper cell to the
cells it covers), restricted to ``dims`` channels drawn at random once (the reference's
``random.sample`` with seed 1024, reproduced exactly). The statistics are the mean μ_ij and
the covariance Σ_ij + εI of the training embeddings at each position (``np.cov``'s N − 1
normalisation), kept as the precision Σ_ij⁻¹ for the Mahalanobis distance (§3.3).

Memory is bounded whatever the number of training images: second moments are accumulated
in float32 about a shift (the first batch's mean, for accuracy) in one C×C block per
position — d²·H·W·4 bytes (WRN-50-2 at 256²: 550²·64²·4 = 4.96 GB; EfficientNet-Lite0,
176 channels: 0.51 GB), then inverted in place, block by block.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from multiad.backbones import FrozenBackbone
from multiad.config import RunConfig
from multiad.methods.base import AnomalyOutput
from multiad.methods.padim.anomaly_map import image_score, padim_map


def channel_subset(n_channels: int, dims: int, seed: int) -> torch.Tensor:
    """The reference's random channels: ``random.seed(seed); random.sample(range(C), d)``
    (all channels, in order, when ``dims`` ≥ C)."""
    if dims >= n_channels:
        return torch.arange(n_channels)
    return torch.tensor(random.Random(seed).sample(range(n_channels), dims))


def embed(feats: Sequence[torch.Tensor], layers: Sequence[int], index: torch.Tensor
          ) -> torch.Tensor:
    """N×d×H×W embedding: the listed stages (1-based) at the first one's grid, deeper ones
    nearest-neighbour upsampled, concatenated, then the ``index`` channels."""
    chosen = [feats[n - 1].float() for n in layers]
    size = chosen[0].shape[-2:]
    up = [chosen[0]] + [F.interpolate(f, size=size, mode="nearest") for f in chosen[1:]]
    return torch.cat(up, dim=1).index_select(1, index.to(up[0].device))


class GaussianStats(nn.Module):
    """μ_ij and Σ_ij⁻¹ at every position, accumulated from training embeddings."""

    def __init__(self, dims: int, positions: int, eps: float = 0.01, chunk: int = 512) -> None:
        super().__init__()
        self.eps, self.chunk = eps, chunk
        self.register_buffer("mean", torch.zeros(positions, dims))
        self.register_buffer("precision", torch.zeros(positions, dims, dims))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))
        self._shift: torch.Tensor | None = None
        self._sum: torch.Tensor | None = None

    @torch.no_grad()
    def update(self, emb: torch.Tensor) -> None:
        """Add a batch of N×d×H×W embeddings (the second moments go into ``precision``'s
        memory until :meth:`finalise`)."""
        x = emb.flatten(2).permute(2, 0, 1)  # P×N×d
        if self._shift is None:
            self._shift = x.mean(dim=1)  # P×d
            self._sum = torch.zeros_like(self._shift, dtype=torch.float64)
            self.precision.zero_()
        xc = x - self._shift[:, None]
        self._sum += xc.sum(dim=1, dtype=torch.float64)
        for p in range(0, xc.shape[0], self.chunk):
            block = xc[p:p + self.chunk]
            self.precision[p:p + self.chunk] += block.transpose(1, 2) @ block
        self.count += x.shape[1]

    @torch.no_grad()
    def finalise(self) -> None:
        """μ = shift + Σ(x − shift)/N; Σ = (S − N·δδᵀ)/(N − 1) + εI; then Σ⁻¹, in place."""
        n = int(self.count)
        if n < 2 or self._sum is None or self._shift is None:
            raise ValueError(f"PaDiM needs at least 2 training images, got {n}")
        delta = (self._sum / n).float()  # mean − shift, P×d
        self.mean.copy_(self._shift + delta)
        eye = torch.eye(self.mean.shape[1], device=self.mean.device)
        for p in range(0, self.mean.shape[0], self.chunk):
            d = delta[p:p + self.chunk]
            cov = (self.precision[p:p + self.chunk] - n * d[:, :, None] * d[:, None, :]) / (n - 1)
            cov = cov + self.eps * eye
            self.precision[p:p + self.chunk] = torch.cholesky_inverse(torch.linalg.cholesky(cov))
        self._shift = self._sum = None

    def mahalanobis(self, emb: torch.Tensor) -> torch.Tensor:
        """√((x_ij − μ_ij)ᵀ Σ_ij⁻¹ (x_ij − μ_ij)) at every position: N×1×H×W (§3.3)."""
        n, _, h, w = emb.shape
        x = emb.float().flatten(2).permute(2, 0, 1)  # P×N×d
        out = torch.empty(x.shape[0], n, device=emb.device)
        for p in range(0, x.shape[0], self.chunk):
            diff = x[p:p + self.chunk] - self.mean[p:p + self.chunk, None]
            out[p:p + self.chunk] = ((diff @ self.precision[p:p + self.chunk]) * diff).sum(-1)
        return out.clamp_min(0).sqrt().t().reshape(n, 1, h, w)


class PadimModel(nn.Module):
    """The frozen backbone, the channel subset and the per-position Gaussians."""

    def __init__(self, cfg: RunConfig, teacher: FrozenBackbone) -> None:
        super().__init__()
        self.cfg, self.teacher = cfg, teacher
        p = cfg.padim
        info = teacher.feature_info
        n_channels = sum(info.channels[n - 1] for n in p.layers)
        self.register_buffer("index", channel_subset(n_channels, p.dims, p.dims_seed))
        side = info.spatial(cfg.data.image_size)[p.layers[0] - 1]
        self.stats = GaussianStats(len(self.index), side * side, p.eps, p.chunk)

    def embedding(self, x: torch.Tensor) -> torch.Tensor:
        return embed(self.teacher(x), self.cfg.padim.layers, self.index)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> AnomalyOutput:
        with torch.autocast(x.device.type, enabled=False):  # distances in float32
            dist = self.stats.mahalanobis(self.embedding(x.float()))
            up, smoothed = padim_map(dist, tuple(x.shape[-2:]), self.cfg.padim.sigma)
        return AnomalyOutput(layer_maps=[dist], fused=up, smoothed=smoothed,
                             score=image_score(smoothed))
