"""The autoencoder's training augmentation (EfficientAD §3.3): per image, one of
brightness, contrast or saturation, with a factor drawn from [0.8, 1.2] (torchvision's
functional colour adjustments, on images in [0, 1]; the global generator, seeded by the
run and kept in its checkpoints)."""

from __future__ import annotations

import torch
from torchvision.transforms.v2 import functional as TF

ADJUSTMENTS = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation)


def colour_jitter(images: torch.Tensor) -> torch.Tensor:
    """N×3×H×W in [0, 1] → each image changed by one random adjustment."""
    choice = torch.randint(0, len(ADJUSTMENTS), (len(images),))
    factor = 0.8 + 0.4 * torch.rand(len(images))
    return torch.stack([ADJUSTMENTS[int(c)](img, float(f))
                        for img, c, f in zip(images, choice, factor, strict=True)])
