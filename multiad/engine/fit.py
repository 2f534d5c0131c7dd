"""Fitting a run of a *fitted* method (PaDiM, PatchCore): one pass over the features of
the normal training images, then ``model.pt`` and ``train.json`` as for a trained run (no
epochs, no checkpoint: an interrupted fit starts again)."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from multiad.config import RunConfig, resolve_auto_teacher
from multiad.data import load_split
from multiad.engine.run_folder import (
    begin_run,
    finished_run,
    run_meta,
    save_run,
    set_determinism,
)
from multiad.engine.run_lock import RunLock, claim_run_folder
from multiad.methods import get_method
from multiad.provenance import select_device


def fit_run(cfg: RunConfig, run_dir: str | Path, *, resume: bool = True,
            progress: bool = True) -> Path:
    """Fit ``cfg``'s method into ``run_dir``; return the path of its ``model.pt``."""
    cfg = resolve_auto_teacher(cfg.validate())
    run_dir = Path(run_dir)
    with RunLock(claim_run_folder(run_dir), "fit"):
        return _fit_locked(cfg, run_dir, resume, progress)


def _fit_locked(cfg: RunConfig, run_dir: Path, resume: bool, progress: bool) -> Path:
    done = finished_run(cfg, run_dir, resume, progress)
    if done is not None:
        return done
    device = select_device(cfg.train.device)
    set_determinism(cfg)
    t_start = time.time()
    data, split = load_split(cfg.data, "train", progress, check=True)
    begin_run(cfg, run_dir, resume)
    fitter = get_method(cfg.method).build(cfg, device)
    with torch.no_grad():
        fitted = fitter.fit(split.images, progress=progress)
        fitted.update(fitter.finish(split.images, progress=progress))
    meta = run_meta(cfg, fitter.teacher.source.describe(), data, device, t_start,
                    losses=[], **fitted)
    save_run(run_dir, fitter.inference_state(), meta)
    return run_dir / "model.pt"
