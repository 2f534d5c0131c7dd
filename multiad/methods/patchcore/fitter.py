"""PatchCore's fitting: every training patch's locally aware feature, then their greedy
coreset as the memory bank (paper §3.1–3.2)."""

from __future__ import annotations

from typing import Any

import torch

from multiad.engine.trainer import FitterBase
from multiad.methods.patchcore.sampler import greedy_coreset


class PatchCoreFitter(FitterBase):
    """One pass: every training patch's features, then their coreset as the memory bank."""

    def fit(self, images_u8: torch.Tensor, progress: bool = True) -> dict[str, Any]:
        p = self.cfg.patchcore
        parts = [self.model.features(feats)[0]
                 for _, feats in self.batches(images_u8, progress, desc="PatchCore features")]
        features = torch.cat(parts)
        chosen = greedy_coreset(features, p.coreset_fraction, p.projection_dim,
                                p.start_points, p.seed, progress)
        self.model.bank = features[chosen].contiguous()
        return {"patchcore": {"patches": len(features), "bank": len(chosen),
                              "bank_mib": round(self.model.bank.numel() * 4 / 2**20, 1),
                              "features_mib": round(features.numel() * 4 / 2**20, 1)}}

    def inference_state(self) -> dict[str, Any]:
        return {"patchcore": {"bank": self.model.bank.cpu()}}
