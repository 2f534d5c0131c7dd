"""Feature discriminator D (paper Fig. 3, Eq. 9; METHOD_SPEC §5)."""

from __future__ import annotations

import torch
from torch import nn

D_FILTERS = (128, 256, 512, 1024)


class FeatureDiscriminator(nn.Module):
    """Four Conv3×3 → BN → LeakyReLU(0.2) blocks (Eq. 9), dropout, flatten, Linear → 1 logit.

    ``forward`` returns the logit; D's probability (Fig. 3's sigmoid output) is
    ``torch.sigmoid(logit)``. Losses use BCE-with-logits, which is the same loss computed
    stably (Eqs. 10–11).
    """

    def __init__(self, in_channels: int, spatial: tuple[int, int], dropout: float = 0.3,
                 filters: tuple[int, ...] = D_FILTERS) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        ch = in_channels
        for f in filters:
            layers += [nn.Conv2d(ch, f, 3, stride=1, padding=1, bias=False), nn.BatchNorm2d(f),
                       nn.LeakyReLU(0.2, inplace=True)]
            ch = f
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(ch * spatial[0] * spatial[1], 1)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.features(feat))
        return self.head(torch.flatten(x, 1)).squeeze(1)

    def probability(self, feat: torch.Tensor) -> torch.Tensor:
        """D(F) ∈ (0, 1): the probability that ``feat`` comes from the teacher."""
        return torch.sigmoid(self(feat))
