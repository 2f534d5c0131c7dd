"""PaDiM's settings, the reference code's values by default."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class PadimConfig:
    """PaDiM (Defard et al., 2021; reference xiahaifeng1995/PaDiM)."""

    layers: tuple[int, ...] = (1, 2, 3)  # backbone stages concatenated (WRN-50-2: 1792 ch)
    dims: int = 550  # channels kept at random (reference: 550 for WRN-50-2, 100 for R18)
    dims_seed: int = 1024  # reference: random.seed(1024); random.sample(range(C), dims)
    eps: float = 0.01  # Σ_ij + ε·I (reference 0.01)
    sigma: float = 4.0  # Gaussian smoothing of the upsampled map (reference σ = 4)
    chunk: int = 512  # positions per block of the covariance / Mahalanobis computation
