"""SimpleNet's anomaly map and image score (paper §3.6; reference ``_predict`` and its
``RescaleSegmentor``).

The patch score is −D(q) (higher: more anomalous), on the grid of the first layer; the map
is that grid bilinearly upsampled to the input size and Gaussian-smoothed (σ = 4); the
image score is the maximum of the raw patch scores (before any smoothing).
"""

from __future__ import annotations

import torch

from multiad.methods.common import upsample_and_smooth


def simplenet_map(patch_scores: torch.Tensor, size: tuple[int, int], sigma: float
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """(upsampled, smoothed) N×H×W maps of the N×1×h×w patch scores."""
    return upsample_and_smooth(patch_scores, size, sigma)


def image_score(patch_scores: torch.Tensor) -> torch.Tensor:
    """The maximum patch score of each image. N."""
    return patch_scores.flatten(1).amax(dim=1)
