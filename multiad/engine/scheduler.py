"""Several runs trained at once on one device (``train_many``): at most ``concurrent``
at a time, each interleaving its steps with the others' (its own stream, RNG states and
data order), the next one started when one finishes, a failed run recorded while the
others go on; the decoded training sets and teacher features they share are released
as soon as no run left needs them (:mod:`multiad.engine.shared_data`)."""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from multiad.config import RunConfig
from multiad.engine.fit import fit_run
from multiad.engine.loop import run_epochs
from multiad.engine.run_setup import open_run
from multiad.engine.run_state import ActiveRun
from multiad.engine.shared_data import SharedTrainingSet, release_unneeded
from multiad.methods import get_method
from multiad.provenance import select_device


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
    active: dict[Path, tuple[ActiveRun, Iterator[None], int]] = {}  # run, steps, bar slot
    loaded: dict[tuple[Any, ...], SharedTrainingSet] = {}  # training sets (and T's features)

    def _start(cfg: RunConfig, run_dir: Path) -> None:
        # a function of its own: no local of train_many keeps a finished run alive
        if not get_method(cfg.method).trained:  # one pass over the data: fitted right away
            done[run_dir] = fit_run(cfg, run_dir, resume=resume, progress=progress)
            return
        r = open_run(cfg, run_dir, resume, progress, loaded)
        if isinstance(r, Path):
            done[run_dir] = r
            return
        r.isolate_rng = not alone  # others draw from the CPU RNG between its steps
        for other, _, _ in active.values():
            other.together.append(str(r.dir))
            r.together.append(str(other.dir))
        slot = min(set(range(limit)) - {pos for _, _, pos in active.values()})
        active[run_dir] = (r, run_epochs(r, progress, slot, on_epoch_end), slot)

    left = False  # a run has finished or failed since the last look at ``loaded``
    while pending or active:
        if left:  # no run left may need a training set on the device
            left = False
            release_unneeded(loaded, [*(c for c, _ in pending),
                                      *(r.cfg for r, _, _ in active.values())])
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
