"""PatchCore's locally aware patch features (paper §3.1; reference ``patchcore.py``,
``common.py``).

Every position of a layer's map is described by its ``p × p`` neighbourhood (zero-padded
unfold, stride 1); the deeper layer's neighbourhoods are bilinearly upsampled to the first
layer's grid; each layer's flattened neighbourhood (C·p² values) is average-pooled to
``pretrain_dim`` (1-D adaptive average pooling, the reference's ``MeanMapper``), and the
layers' pooled vectors together to ``target_dim`` (its ``Aggregator``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from multiad.backbones import FrozenBackbone
from multiad.config import RunConfig
from multiad.methods.base import AnomalyOutput
from multiad.methods.patchcore.anomaly_map import image_score, patchcore_map
from multiad.methods.patchcore.nn_search import nearest_distances


def neighbourhoods(feat: torch.Tensor, patch_size: int) -> torch.Tensor:
    """N×C×h×w → N×h×w×C×p×p: the zero-padded p×p neighbourhood of every position."""
    n, c, h, w = feat.shape
    pad = (patch_size - 1) // 2
    cols = F.unfold(feat, kernel_size=patch_size, padding=pad, stride=1)  # N×(C·p²)×(h·w)
    return cols.reshape(n, c, patch_size, patch_size, h, w).permute(0, 4, 5, 1, 2, 3)


def patch_features(feats: Sequence[torch.Tensor], layers: Sequence[int], patch_size: int,
                   pretrain_dim: int, target_dim: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """(N·h·w)×target_dim features of a batch and the grid (h, w) they lie on."""
    chosen = [neighbourhoods(feats[n - 1].float(), patch_size) for n in layers]
    n, h, w = chosen[0].shape[:3]
    pooled = []
    for k, nb in enumerate(chosen):
        if k:  # a deeper layer: its neighbourhoods bilinearly upsampled to the first grid
            hk, wk, c = nb.shape[1], nb.shape[2], nb.shape[3]
            flat = nb.permute(0, 3, 4, 5, 1, 2).reshape(n, -1, hk, wk)
            flat = F.interpolate(flat, size=(h, w), mode="bilinear", align_corners=False)
            nb = flat.reshape(n, c, patch_size, patch_size, h, w).permute(0, 4, 5, 1, 2, 3)
        vec = nb.reshape(n * h * w, 1, -1)
        pooled.append(F.adaptive_avg_pool1d(vec, pretrain_dim)[:, 0])
    stacked = torch.stack(pooled, dim=1).reshape(n * h * w, 1, -1)
    return F.adaptive_avg_pool1d(stacked, target_dim)[:, 0], (h, w)


class PatchCoreModel(nn.Module):
    """The frozen backbone and the memory bank of coreset patch features."""

    def __init__(self, cfg: RunConfig, teacher: FrozenBackbone, bank_size: int = 0) -> None:
        super().__init__()
        self.cfg, self.teacher = cfg, teacher
        self.register_buffer("bank", torch.zeros(bank_size, cfg.patchcore.target_dim))

    def features(self, feats: Sequence[torch.Tensor]) -> tuple[torch.Tensor, tuple[int, int]]:
        p = self.cfg.patchcore
        return patch_features(feats, p.layers, p.patch_size, p.pretrain_dim, p.target_dim)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> AnomalyOutput:
        with torch.autocast(x.device.type, enabled=False):  # distances in float32
            f, (h, w) = self.features(self.teacher(x.float()))
            scores = nearest_distances(f, self.bank, self.cfg.patchcore.k).reshape(
                len(x), 1, h, w)
            up, smoothed = patchcore_map(scores, tuple(x.shape[-2:]), self.cfg.patchcore.sigma)
        return AnomalyOutput(layer_maps=[scores], fused=up, smoothed=smoothed,
                             score=image_score(scores))
