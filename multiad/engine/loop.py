"""The training loop every trained method shares: epochs, data order, checkpoints and
resume, progress, several runs at once (``train_many``), CUDA graphs, per-run RNG states
and the teacher-feature cache. The method's own step is its trainer's
(:class:`multiad.engine.trainer.TrainerBase`).

A run lives in one folder (:mod:`multiad.engine.run_folder`). Re-running the same command
resumes from the checkpoint and gives the same weights as an uninterrupted run (same
device, deterministic mode).
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from multiad.config import RunConfig, resolve_auto_teacher
from multiad.data import load_split
from multiad.engine.cuda_rng import own_cuda_rng, using_cuda_rng
from multiad.engine.fit import fit_run
from multiad.engine.run_folder import (
    begin_run,
    finished_run,
    run_meta,
    save_run,
    set_determinism,
    write_losses,
)
from multiad.engine.run_lock import RunLock, claim_run_folder
from multiad.engine.teacher_cache import teacher_features
from multiad.engine.trainer import TrainerBase
from multiad.engine.validation import VALIDATION_KEYS, HeldOut, hold_out, validate
from multiad.methods import get_method
from multiad.provenance import select_device
from multiad.torch_files import load_torch, save_torch


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled sample order of one epoch: a function of (seed, epoch) alone."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)


@dataclass
class _Run:
    """One run folder being trained (inside :func:`train_many`)."""

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


def _data_key(cfg: RunConfig) -> tuple[Any, ...]:
    d = cfg.data
    return (d.kind, d.root, d.category, d.image_size, d.cache_dir,
            str(select_device(cfg.train.device)))


@dataclass
class _Shared:
    """A decoded training set on the device, and T's features of it, shared by the runs of a
    group that train on it (keyed by teacher, precision, layout and batch size)."""

    data: Any
    images: torch.Tensor
    teacher: dict[tuple[Any, ...], list[torch.Tensor] | None] = field(default_factory=dict)


def _open_run(cfg: RunConfig, run_dir: Path, resume: bool, progress: bool,
              loaded: dict[tuple[Any, ...], _Shared] | None = None) -> _Run | Path:
    """Prepare one run: its folder, data, trainer and resume state — or, when the run is
    already complete, the path of its ``model.pt``. ``loaded`` shares decoded training
    sets and T's features of them (on the device) between the runs of a group."""
    cfg = resolve_auto_teacher(cfg.validate())
    lock = RunLock(claim_run_folder(run_dir), "train").acquire()
    try:
        run = _open_locked(cfg, run_dir, resume, progress, loaded)
    except BaseException:
        lock.release()
        raise
    if isinstance(run, Path):
        lock.release()
    else:
        run.lock = lock  # released when the run is saved or fails (_run_epochs)
    return run


def _open_locked(cfg: RunConfig, run_dir: Path, resume: bool, progress: bool,
                 loaded: dict[tuple[Any, ...], _Shared] | None) -> _Run | Path:
    done = finished_run(cfg, run_dir, resume, progress)
    if done is not None:
        return done
    ckpt_path, model_path = run_dir / "checkpoint.pt", run_dir / "model.pt"
    device = select_device(cfg.train.device)
    set_determinism(cfg)
    t_start = time.time()

    loaded = {} if loaded is None else loaded
    key = _data_key(cfg)
    if key not in loaded:
        data, split = load_split(cfg.data, "train", progress, check=True)
        loaded[key] = _Shared(data, split.images.to(device) if device.type == "cuda"
                              else split.images)
    begin_run(cfg, run_dir, resume)
    shared = loaded[key]  # read only: runs index it, never write to it
    data, images = shared.data, shared.images
    trainer = get_method(cfg.method).build(cfg, device)
    start, losses = 0, []
    if resume and ckpt_path.exists():
        state = load_torch(ckpt_path, map_location=device)
        start, losses = trainer.load_state(state)
        losses = [row for row in losses if row["epoch"] <= start]
        if progress:
            print(f"resuming {run_dir} after epoch {start}/{cfg.train.epochs}")
    # the engine's validation images first (the same for every method), then the method's
    images, held = hold_out(images, cfg.train.holdout, cfg.train.seed)
    images = trainer.begin(images, progress)  # a subset when the method holds some out
    if model_path.exists() and resume and start >= cfg.train.epochs:
        if progress:
            print(f"{model_path} is complete ({start} epochs); nothing to do")
        return model_path

    t_cache = None
    if cfg.train.cache_teacher and start < cfg.train.epochs:
        t_key = (*trainer.teacher_cache_key(), cfg.train.amp, cfg.train.channels_last,
                 cfg.train.batch_size, cfg.train.holdout,
                 cfg.train.seed if held is not None else None)  # which images are trained
        if t_key not in shared.teacher:
            shared.teacher[t_key] = teacher_features(trainer, images, progress)
        t_cache = shared.teacher[t_key]
    stream = cuda_rng = None
    if device.type == "cuda":
        stream = torch.cuda.Stream(device)
        stream.wait_stream(torch.cuda.current_stream(device))  # data and weights are ready
        cuda_rng = own_cuda_rng(device)  # from the seed (or checkpoint) just set
    bs = cfg.train.batch_size
    graphed = None
    if cfg.train.cuda_graph and trainer.graph_capturable and device.type == "cuda" \
            and len(images) >= bs \
            and start < cfg.train.epochs:
        from multiad.engine.cuda_graph import GraphedStep

        # the same step without launch overhead; warm-up steps are undone before capture
        graphed = GraphedStep(trainer, (bs, *images.shape[1:]), stream=stream,
                              teacher=None if t_cache is None else
                              [((bs, *c.shape[1:]), c.dtype) for c in t_cache], rng=cuda_rng)
    return _Run(cfg, run_dir, data, images, trainer, start, losses, graphed, stream, t_start,
                t_cache, held, cpu_rng=torch.get_rng_state(), cuda_rng=cuda_rng)


def _run_epochs(run: _Run, progress: bool, position: int,
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


def _epochs(run: _Run, bar: Any, on_epoch_end: Callable[[Path, int], None] | None
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


def _save_trained(run: _Run, calib: dict[str, Any]) -> None:
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


class TrainingFailed(RuntimeError):
    """Some runs of a :func:`train_many` group failed; the others were trained and saved."""

    def __init__(self, failures: dict[Path, BaseException]) -> None:
        self.failures = failures
        lines = [f"{path}: {type(exc).__name__}: {exc}" for path, exc in failures.items()]
        super().__init__(f"{len(failures)} run(s) failed (the others finished):\n"
                         + "\n".join(lines))


def _without_frames(exc: Exception) -> Exception:
    """``exc`` with its traceback's frames cleared: they hold the failed run's model,
    optimiser and activations, which the runs after it need the memory of."""
    traceback.clear_frames(exc.__traceback__)
    return exc


def train_many(runs: list[tuple[RunConfig, str | Path]], *, concurrent: int = 0,
               resume: bool = True, progress: bool = True,
               on_epoch_end: Callable[[Path, int], None] | None = None) -> list[Path]:
    """Train several independent runs at once (Algorithm 1 each, unchanged); return the
    paths of their ``model.pt`` files.

    At most ``concurrent`` runs (0: all) train at a time; when one finishes the next one
    starts. Each run keeps its own data order, RNG state (dropout), optimiser and, on CUDA,
    its own stream: the runs' steps are queued in turn, so on a GPU the small batches of
    several runs fill the device together (e.g. MVTec categories, or ablation settings).
    Each run's weights are those it would get trained alone (bit for bit on the CPU; on a
    GPU within the tolerance of its kernels): on CUDA each run draws D's dropout from its
    own RNG state object (:mod:`multiad.engine.cuda_rng`), to which its graph is bound, so
    concurrent replays cannot read each other's seed and offset (a run trained alone
    draws from its own state too, seeded as before; the global CUDA state is left as it
    was). A run that fails
    does not stop the others; :class:`TrainingFailed` names the failed runs at the end.
    """
    dirs = [Path(d) for _, d in runs]
    if len(set(dirs)) != len(dirs):
        raise ValueError(f"train_many: a run folder is listed twice: {[str(d) for d in dirs]}")
    devices = {select_device(cfg.train.device) for cfg, _ in runs}
    flags = {cfg.train.deterministic for cfg, _ in runs}
    if len(devices) > 1 or len(flags) > 1:
        raise ValueError("train_many: the runs of one group share a device and the "
                         "train.deterministic switch (cuDNN's mode is global)")
    alone = len(runs) == 1
    limit = concurrent if concurrent > 0 else len(runs)
    pending = list(zip((cfg for cfg, _ in runs), dirs, strict=True))
    failures: dict[Path, BaseException] = {}
    done: dict[Path, Path] = {}
    active: dict[Path, tuple[_Run, Iterator[None], int]] = {}  # run, its steps, bar position
    loaded: dict[tuple[Any, ...], _Shared] = {}  # training sets (and T's features) in use

    def _start(cfg: RunConfig, run_dir: Path) -> None:
        # a function of its own: no local of train_many keeps a finished run alive
        if not get_method(cfg.method).trained:  # one pass over the data: fitted right away
            done[run_dir] = fit_run(cfg, run_dir, resume=resume, progress=progress)
            return
        r = _open_run(cfg, run_dir, resume, progress, loaded)
        if isinstance(r, Path):
            done[run_dir] = r
            return
        r.isolate_rng = not alone  # others draw from the CPU RNG between its steps
        for other, _, _ in active.values():
            other.together.append(str(r.dir))
            r.together.append(str(other.dir))
        slot = min(set(range(limit)) - {pos for _, _, pos in active.values()})
        active[run_dir] = (r, _run_epochs(r, progress, slot, on_epoch_end), slot)

    left = False  # a run has finished or failed since the last look at ``loaded``
    while pending or active:
        if left:
            left = False
            needed = {_data_key(c) for c, _ in pending} | {_data_key(r.cfg)
                                                            for r, _, _ in active.values()}
            for key in set(loaded) - needed:
                del loaded[key]  # no run left needs this training set on the device
        while pending and len(active) < limit:
            cfg, run_dir = pending.pop(0)
            try:
                _start(cfg, run_dir)
            except Exception as exc:
                if alone:
                    raise
                failures[run_dir] = _without_frames(exc)
                left = True
        for run_dir in list(active):
            try:
                next(active[run_dir][1])
            except StopIteration:
                done[run_dir] = run_dir / "model.pt"
                del active[run_dir]
                left = True
            except Exception as exc:
                if alone:
                    raise
                failures[run_dir] = _without_frames(exc)
                del active[run_dir]
                left = True
    loaded.clear()  # the error below keeps this frame alive; not its training sets
    if failures:
        raise TrainingFailed(failures)
    return [done[d] for d in dirs]


def train(cfg: RunConfig, run_dir: str | Path, *, resume: bool = True, progress: bool = True,
          on_epoch_end: Callable[[int], None] | None = None) -> Path:
    """Train ``cfg``'s method into ``run_dir``; return the path of the final ``model.pt``."""
    hook = None if on_epoch_end is None else (lambda _dir, epoch: on_epoch_end(epoch))
    return train_many([(cfg, run_dir)], resume=resume, progress=progress, on_epoch_end=hook)[0]
