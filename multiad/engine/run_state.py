"""One run being trained in a group (:mod:`multiad.engine.scheduler`): its folder, data,
trainer, where it resumes, its step (eager or a CUDA graph), its stream and its own RNG
states, so that runs interleaving their steps draw exactly what each would alone."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from multiad.config import RunConfig
from multiad.engine.cuda_rng import using_cuda_rng
from multiad.engine.run_lock import RunLock
from multiad.engine.trainer import TrainerBase
from multiad.engine.validation import HeldOut


@dataclass
class ActiveRun:
    """One run folder being trained."""

    cfg: RunConfig
    dir: Path
    data: Any
    images: torch.Tensor
    trainer: TrainerBase
    start: int
    losses: list[dict[str, float]]
    graphed: Any  # GraphedStep | None
    stream: Any  # torch.cuda.Stream | None: all of this run's GPU work is queued on it
    t_start: float
    t_cache: list[torch.Tensor] | None  # T's features of ``images`` (None: T runs per step)
    held: HeldOut | None = None  # the held-out validation pairs (train.holdout)
    cpu_rng: torch.Tensor | None = None  # its CPU RNG state between its steps (isolated)
    cuda_rng: Any = None  # torch.Generator | None: its own CUDA RNG state (multiad.engine.cuda_rng)
    together: list[str] = field(default_factory=list)  # runs that trained at the same time
    isolate_rng: bool = False  # keep its CPU RNG state apart from other runs'
    lock: RunLock | None = None  # its run folder's lock, held while it trains

    @contextmanager
    def active(self) -> Iterator[None]:
        """This run's stream and RNG states (dropout draws), while it queues work."""
        dev = self.trainer.device
        if self.isolate_rng:
            torch.set_rng_state(self.cpu_rng)
        with using_cuda_rng(self.cuda_rng, dev), \
                torch.cuda.stream(self.stream) if self.stream is not None else nullcontext():
            yield
        if self.isolate_rng:
            self.cpu_rng = torch.get_rng_state()
