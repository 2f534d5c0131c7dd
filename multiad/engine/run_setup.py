"""Opening a run to train: its folder claimed and locked, its data (shared by the runs of
a group), its method's trainer, where it resumes, the held-out validation, the teacher's
cached features, its CUDA stream, RNG state and graph — or, when the run is complete, the
path of its ``model.pt``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from multiad.config import RunConfig, resolve_auto_teacher
from multiad.engine.cuda_graph import graphed_step_if_asked
from multiad.engine.cuda_rng import own_cuda_rng
from multiad.engine.resume import resume_from
from multiad.engine.run_folder import begin_run, finished_run, set_determinism
from multiad.engine.run_lock import RunLock, claim_run_folder
from multiad.engine.run_state import ActiveRun
from multiad.engine.shared_data import (
    SharedTrainingSet,
    cached_teacher_features,
    training_set,
)
from multiad.engine.validation import hold_out
from multiad.methods import get_method
from multiad.provenance import select_device


def open_run(cfg: RunConfig, run_dir: Path, resume: bool, progress: bool,
             loaded: dict[tuple[Any, ...], SharedTrainingSet] | None = None
             ) -> ActiveRun | Path:
    """Prepare one run (locked until it is saved or fails), or return the ``model.pt`` of
    a complete one. ``loaded`` shares decoded training sets and T's features of them (on
    the device) between the runs of a group."""
    cfg = resolve_auto_teacher(cfg.validate())
    lock = RunLock(claim_run_folder(run_dir), "train").acquire()
    try:
        run = _open_locked(cfg, run_dir, resume, progress, {} if loaded is None else loaded)
    except BaseException:
        lock.release()
        raise
    if isinstance(run, Path):
        lock.release()
    else:
        run.lock = lock  # released when the run is saved or fails (multiad.engine.loop)
    return run


def _open_locked(cfg: RunConfig, run_dir: Path, resume: bool, progress: bool,
                 loaded: dict[tuple[Any, ...], SharedTrainingSet]) -> ActiveRun | Path:
    done = finished_run(cfg, run_dir, resume, progress)
    if done is not None:
        return done
    model_path = run_dir / "model.pt"
    device = select_device(cfg.train.device)
    set_determinism(cfg)
    t_start = time.time()
    shared = training_set(loaded, cfg, device, progress)  # read only: runs index it
    begin_run(cfg, run_dir, resume)
    trainer = get_method(cfg.method).build(cfg, device)
    start, losses = resume_from(trainer, run_dir / "checkpoint.pt", device, progress) \
        if resume else (0, [])
    # the engine's validation images first (the same for every method), then the method's
    images, held = hold_out(shared.images, cfg.train.holdout, cfg.train.seed)
    images = trainer.begin(images, progress)  # a subset when the method holds some out
    if model_path.exists() and resume and start >= cfg.train.epochs:
        if progress:
            print(f"{model_path} is complete ({start} epochs); nothing to do")
        return model_path
    t_cache = cached_teacher_features(shared, trainer, images, held, progress) \
        if cfg.train.cache_teacher and start < cfg.train.epochs else None
    stream = cuda_rng = None
    if device.type == "cuda":
        stream = torch.cuda.Stream(device)
        stream.wait_stream(torch.cuda.current_stream(device))  # data and weights are ready
        cuda_rng = own_cuda_rng(device)  # from the seed (or checkpoint) just set
    graphed = graphed_step_if_asked(trainer, images, start, stream, t_cache, cuda_rng)
    return ActiveRun(cfg, run_dir, shared.data, images, trainer, start, losses, graphed,
                     stream, t_start, t_cache, held, cpu_rng=torch.get_rng_state(),
                     cuda_rng=cuda_rng)
