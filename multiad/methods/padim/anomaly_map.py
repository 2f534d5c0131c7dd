"""PaDiM's anomaly map and score (paper §3.3; reference ``main.py``).

The Mahalanobis distance at every position of the embedding grid, bilinearly upsampled to
the input size, smoothed by a Gaussian (σ = 4); the image score is the map's maximum.
"""

from __future__ import annotations

import torch

from multiad.methods.common import upsample_and_smooth


def padim_map(distances: torch.Tensor, size: tuple[int, int], sigma: float
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """(upsampled, smoothed) maps, N×H×W each, of N×1×h×w Mahalanobis distances."""
    return upsample_and_smooth(distances, size, sigma)


def image_score(smoothed: torch.Tensor) -> torch.Tensor:
    """The maximum of the smoothed map. N."""
    return smoothed.flatten(1).amax(dim=1)
