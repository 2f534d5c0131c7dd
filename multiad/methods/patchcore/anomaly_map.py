"""PatchCore's anomaly map and image score (paper §3.3; reference ``patchcore.py``,
``common.RescaleSegmentor``).

The image score is the maximum patch score (before any upsampling or smoothing); the map
is the patch-score grid bilinearly upsampled to the input size and smoothed (σ = 4).
"""

from __future__ import annotations

import torch

from multiad.methods.common import upsample_and_smooth


def patchcore_map(scores: torch.Tensor, size: tuple[int, int], sigma: float
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """(upsampled, smoothed) N×H×W maps of an N×1×h×w patch-score grid."""
    return upsample_and_smooth(scores, size, sigma)


def image_score(scores: torch.Tensor) -> torch.Tensor:
    """The largest patch score of each image. N."""
    return scores.flatten(1).amax(dim=1)
