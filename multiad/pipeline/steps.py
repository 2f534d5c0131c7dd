"""What one step of a plan (:mod:`multiad.pipeline.plan`) does, in whichever process runs
it: a Ray worker on any node, or this one.

A step that fails on its own is recorded in ``results/<profile>/failed/<step>.json`` (its
error and traceback; removed when the step later succeeds) and returns ``ok: False``; the
steps that need it are skipped, the others go on. A step whose process dies (a node lost,
a worker killed) is retried by Ray and resumes from its runs' checkpoints.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import traceback
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from multiad.pipeline.profiles import Profile


class Context(NamedTuple):
    """What every step of a plan shares (sent to the workers once)."""

    profile: Profile
    results: Path
    workdir: Path
    device: str | None


def failure_file(results: Path, step_id: str) -> Path:
    return results / "failed" / f"{step_id.replace('/', '--')}.json"


@contextlib.contextmanager
def _in(workdir: Path) -> Iterator[None]:
    """The profile's relative data paths are the repository's: run there."""
    before = os.getcwd()
    os.chdir(workdir)
    try:
        yield
    finally:
        os.chdir(before)


def _where() -> dict[str, Any]:
    out: dict[str, Any] = {"host": socket.gethostname(), "pid": os.getpid()}
    try:
        import ray

        if ray.is_initialized():
            out["node"] = ray.get_runtime_context().get_node_id()
    except ImportError:
        pass
    return out


def run_step(ctx: Context, step: Any, *needed: dict[str, Any]) -> dict[str, Any]:
    """Run ``step`` (a :class:`~multiad.pipeline.plan.Step`) after the steps it needs
    (their results); return its result: ``ok``, ``error``, ``failed`` (run folders that
    failed), ``skipped``, ``wall_s``, where it ran."""
    from multiad.atomic import write_json

    t0 = time.time()
    result: dict[str, Any] = {"id": step.id, "kind": step.kind, "ok": True, "failed": [],
                              **_where()}
    lost = [n["id"] for n in needed if not n["ok"] or set(n["failed"]) & set(
        map(str, step.dirs))]
    if lost:
        return {**result, "ok": False, "skipped": f"needs {', '.join(lost)}, which failed"}
    try:
        with _in(ctx.workdir), warnings.catch_warnings():
            # the offline-backbone fallback is said on every page's banner
            warnings.filterwarnings("ignore", message="(?s).*weights=auto")
            errors = _execute(ctx, step)
            result["failed"] = list(errors)
    except Exception as exc:  # recorded, and the plan goes on
        result.update(ok=False, error=f"{type(exc).__name__}: {exc}",
                      traceback=traceback.format_exc())
    result["wall_s"] = round(time.time() - t0, 1)
    if result["failed"] and result["ok"]:
        result.update(error=f"{len(errors)} of its {len(step.runs)} runs failed (the others "
                            "finished): " + "; ".join(f"{k}: {v}" for k, v in errors.items()))
    record = failure_file(ctx.results, step.id)
    if result["ok"] and not result["failed"]:
        record.unlink(missing_ok=True)
    else:
        write_json(record, result)
    return result


def _execute(ctx: Context, step: Any) -> dict[str, str]:
    """Do the step's work; return the run folders that failed, with their errors (a
    group's other runs finished)."""
    from multiad.methods import get_method
    from multiad.pipeline.runs import run_ablation, run_job
    from multiad.provenance import select_device
    from multiad.train import TrainingFailed, train_many

    prof = ctx.profile
    if step.kind == "prepare":
        t = step.runs[0]
        get_method(t.cfg.method).prepare(t.cfg, select_device(t.cfg.train.device))
        return {}
    if step.kind == "train":  # its data was made before the plan ran (run_plan)
        try:
            train_many([(t.cfg, t.dir) for t in step.runs], concurrent=len(step.runs),
                       progress=False)
        except TrainingFailed as exc:
            if len(exc.failures) == len(step.runs):
                raise
            return {str(path): f"{type(e).__name__}: {e}" for path, e in exc.failures.items()}
        return {}
    if step.ablation:
        ab = prof.ablations[step.ablation]
        setting = next(s for s in ab.settings if s.id == step.setting)
        run_ablation(prof, ab, setting, step.job, step.seed, ctx.results, ctx.device,
                     progress=False)
    else:
        run_job(prof, step.job, step.seed, ctx.results, ctx.device, progress=False,
                method=step.method)
    return {}
