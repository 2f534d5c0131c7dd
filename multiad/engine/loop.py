"""The training loop every trained method shares: epochs in a seeded data order, each
step the method's own (:class:`multiad.engine.trainer.TrainerBase`; or its CUDA graph),
losses and checkpoints after each epoch, the held-out validation, and the trained run
saved at the end. A run is opened by :mod:`multiad.engine.run_setup`; several interleave
their steps under :mod:`multiad.engine.scheduler`.

A run lives in one folder (:mod:`multiad.engine.run_folder`). Re-running the same command
resumes from the checkpoint and gives the same weights as an uninterrupted run (same
device, deterministic mode).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from multiad.engine.run_folder import run_meta, save_run, write_losses
from multiad.engine.run_state import ActiveRun
from multiad.engine.validation import VALIDATION_KEYS, validate
from multiad.torch_files import save_torch


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled sample order of one epoch: a function of (seed, epoch) alone."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)


def run_epochs(run: ActiveRun, progress: bool, position: int,
                on_epoch_end: Callable[[Path, int], None] | None) -> Iterator[None]:
    """Train ``run`` to its last epoch and save it, yielding after each queued batch so
    that several runs can interleave their steps."""
    cfg, trainer, images = run.cfg, run.trainer, run.images
    bar = tqdm(range(run.start, cfg.train.epochs), desc=f"train {run.data.name}", unit="epoch",
               disable=not progress, initial=run.start, total=cfg.train.epochs,
               position=position)
    try:
        yield from _epochs(run, bar, on_epoch_end)
        with run.active():
            calib = trainer.finish(images, progress=progress)
            _save_trained(run, calib)  # its GPU→CPU copies ordered after the run's work
    finally:
        bar.close()
        if run.stream is not None:  # nothing of this run is still queued when it is freed
            run.stream.synchronize()
        if run.lock is not None:
            run.lock.release()


def _epochs(run: ActiveRun, bar: Any, on_epoch_end: Callable[[Path, int], None] | None
            ) -> Iterator[None]:
    cfg, trainer, images = run.cfg, run.trainer, run.images
    device, n, bs = trainer.device, len(images), cfg.train.batch_size
    ckpt_path = run.dir / "checkpoint.pt"
    every = max(1, cfg.train.checkpoint_every)
    for epoch in bar:
        t0 = time.time()
        with run.active():
            sums = {k: torch.zeros((), device=device) for k in trainer.loss_keys}
            # on the device once per epoch: a per-step copy from pageable host memory may
            # wait for this run's stream, which would stall the other runs' queues
            order = epoch_order(n, cfg.train.seed, epoch).to(images.device)
        steps, seen = 0, set()
        for i in range(0, n, bs):
            idx = order[i:i + bs]
            with run.active():
                x = trainer.prepare(images[idx])
                t = None if run.t_cache is None else [c[idx] for c in run.t_cache]
                if run.graphed is not None and len(idx) == bs:
                    out = run.graphed(x, t)  # queued on this run's stream, which is current
                else:
                    out = trainer.step(x, t)
                for k, v in out.items():
                    sums[k] += v
                seen.update(out)
            steps += 1
            yield
        with run.active():  # reading the sums waits for this run's stream only
            # a loss the configuration switches off (Multi-AD without D: L_D, L_adv) is NaN
            means = {k: float(v) / steps if k in seen else float("nan")
                     for k, v in sums.items()}
            # wall time of the epoch (shared with the runs that train at the same time)
            row = {"epoch": epoch + 1, "seconds": round(time.time() - t0, 3), **means}
            last = epoch + 1 == cfg.train.epochs
            if run.held is not None and ((epoch + 1) % cfg.train.validate_every == 0 or last):
                row.update(validate(trainer, run.held, images))
            run.losses.append(row)
            if (epoch + 1) % every == 0 or last:
                save_torch(ckpt_path, trainer.state(epoch + 1, run.losses))
                write_losses(run.dir / "losses.csv", run.losses, trainer.loss_keys)
        bar.set_postfix({k: f"{row[k]:.4f}" for k in (*trainer.loss_keys, *VALIDATION_KEYS)
                         if k in row and row[k] == row[k]})
        if on_epoch_end is not None:
            on_epoch_end(run.dir, epoch + 1)
        yield


def _save_trained(run: ActiveRun, calib: dict[str, Any]) -> None:
    cfg, trainer = run.cfg, run.trainer
    meta = run_meta(cfg, trainer.teacher.source.describe(), run.data, trainer.device,
                    run.t_start, losses=run.losses, **calib,
                    images_trained=len(run.images),  # fewer than train's when held out
                    images_validated=0 if run.held is None else len(run.held.images) // 2,
                    teacher_features_cached=run.t_cache is not None,
                    cuda_graph_used=run.graphed is not None,  # the config asks; this: it ran
                    trained_together_with=run.together)
    write_losses(run.dir / "losses.csv", run.losses, trainer.loss_keys)
    save_run(run.dir, trainer.inference_state(), meta)
    if not cfg.train.keep_checkpoint:
        (run.dir / "checkpoint.pt").unlink(missing_ok=True)  # model.pt holds all eval needs
