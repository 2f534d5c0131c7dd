"""Resuming a run from its ``checkpoint.pt``: weights, optimiser and RNG states and the
losses so far, read with the safe loader; the run then continues as if never stopped."""

from __future__ import annotations

from pathlib import Path

import torch

from multiad.engine.trainer import TrainerBase
from multiad.torch_files import load_torch


def resume_from(trainer: TrainerBase, checkpoint: Path, device: torch.device, progress: bool
                ) -> tuple[int, list[dict[str, float]]]:
    """(epochs done, their loss rows) from ``checkpoint``, loaded into ``trainer``; (0, [])
    when there is none."""
    if not checkpoint.exists():
        return 0, []
    start, losses = trainer.load_state(load_torch(checkpoint, map_location=device))
    if progress:
        print(f"resuming {checkpoint.parent} after epoch {start}/{trainer.cfg.train.epochs}")
    return start, [row for row in losses if row["epoch"] <= start]
