"""SimpleNet's anomalous features and loss (paper §3.3 and §3.5; reference
``_train_discriminator``).

Anomalous features are the adapted normal ones plus i.i.d. Gaussian noise,
q⁻ = q + ε, ε ~ N(0, σ²I) (one draw per element). The loss is the truncated L1 loss with
margin th: normal features are pushed to D(q) ≥ th and anomalous ones to D(q⁻) ≤ −th,

    L = mean_q max(0, th − D(q)) + mean_q⁻ max(0, th + D(q⁻)),

each mean over every feature of the batch (those already beyond the margin count as zero).
"""

from __future__ import annotations

import torch


def synthetic_anomalies(q: torch.Tensor, std: float) -> torch.Tensor:
    """q + ε with ε ~ N(0, std²) per element (gradients reach q: it is not detached)."""
    return q + torch.randn_like(q) * std


def truncated_l1_loss(true_scores: torch.Tensor, fake_scores: torch.Tensor, margin: float
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """The two terms of L: (mean max(0, th − D(q)), mean max(0, th + D(q⁻)))."""
    true_loss = torch.clamp(margin - true_scores, min=0).mean()
    fake_loss = torch.clamp(margin + fake_scores, min=0).mean()
    return true_loss, fake_loss
