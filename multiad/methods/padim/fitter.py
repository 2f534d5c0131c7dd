"""PaDiM's fitting: one pass over the training images' embeddings, their mean and
covariance at every position (paper §3.2), and how ``model.pt`` keeps them."""

from __future__ import annotations

from typing import Any

import torch

from multiad.engine.trainer import FitterBase
from multiad.methods.padim.torch_model import GaussianStats, embed


class PadimFitter(FitterBase):
    """One pass: the training embeddings' mean and covariance at every position."""

    def fit(self, images_u8: torch.Tensor, progress: bool = True) -> dict[str, Any]:
        for _, feats in self.batches(images_u8, progress, desc="PaDiM statistics"):
            self.model.stats.update(embed(feats, self.cfg.padim.layers, self.model.index))
        self.model.stats.finalise()
        stats = self.model.stats
        return {"padim": {"dims": len(self.model.index), "positions": stats.mean.shape[0],
                          "statistics_mib": round(stats.precision.numel() * 4 / 2**20, 1)}}

    def inference_state(self) -> dict[str, Any]:
        return {"padim": pack(self.model.stats)}


def pack(stats: GaussianStats) -> dict[str, torch.Tensor]:
    """μ and the lower triangle of each (symmetric) Σ⁻¹, on the CPU: half the full size."""
    d = stats.mean.shape[1]
    rows, cols = torch.tril_indices(d, d, device=stats.precision.device)
    return {"mean": stats.mean.cpu(), "precision_tril": stats.precision[:, rows, cols].cpu(),
            "count": stats.count.cpu()}


def unpack(stats: GaussianStats, packed: dict[str, torch.Tensor]) -> None:
    d = stats.mean.shape[1]
    rows, cols = torch.tril_indices(d, d)
    stats.precision[:, rows, cols] = packed["precision_tril"]  # in place: no second copy
    stats.precision[:, cols, rows] = packed["precision_tril"]
    stats.mean.copy_(packed["mean"])
    stats.count.copy_(packed["count"])
