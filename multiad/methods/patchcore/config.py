"""PatchCore's settings, the reference code's values (its MVTec AD command) by default."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class PatchCoreConfig:
    """PatchCore (Roth et al., 2022; reference amazon-science/patchcore-inspection)."""

    layers: tuple[int, ...] = (2, 3)  # backbone stages (reference: layer2, layer3)
    patch_size: int = 3  # local neighbourhood aggregated around each position
    pretrain_dim: int = 1024  # each layer's patch features average-pooled to this size
    target_dim: int = 1024  # the layers' pooled features average-pooled together
    coreset_fraction: float = 0.1  # the memory bank keeps this share of training patches
    projection_dim: int = 128  # random projection used to select the coreset
    start_points: int = 10  # random starting points of the approximate greedy coreset
    k: int = 1  # nearest neighbours averaged for a patch's score
    sigma: float = 4.0  # Gaussian smoothing of the upsampled patch-score map
    seed: int = 0  # coreset starting points and projection (reference: fix_seeds(0))
