"""A run folder on disk: its configuration, checkpoints, losses, and the trained model.

``config.yaml`` (written first), ``checkpoint.pt`` (atomically, every
``checkpoint_every`` epochs, with optimiser and RNG states), ``losses.csv``, and at the end
``model.pt`` and ``train.json`` (written last: a folder with both is complete).
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from multiad.atomic import atomic_write, write_json
from multiad.config import RunConfig, RunConfigMismatch
from multiad.engine.run_lock import clear_run_files
from multiad.engine.validation import VALIDATION_KEYS
from multiad.methods.registry import get_method
from multiad.torch_files import save_torch


def comparable_config(d: dict[str, Any]) -> dict[str, Any]:
    """Config minus the keys a resumed run may change (epochs, device, evaluation batch,
    how the step is executed) and minus the other methods' sections (a PaDiM run does not
    depend on SimpleNet's settings); keys added to ``RunConfig`` later count at their
    default; of the method's section, what its ``execution_keys`` leave."""
    cfg = RunConfig.from_dict(d).validate()  # what was left open, made concrete
    method = get_method(cfg.method)
    full = cfg.to_dict(own_section_only=True)
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in full.items()}
    out[method.section] = method.comparable(out[method.section])
    for key in ("epochs", "device", "eval_batch_size", "compile", "compile_mode", "cuda_graph",
                "cache_teacher", "checkpoint_every", "keep_checkpoint", "validate_every"):
        out["train"].pop(key, None)
    out["data"].pop("cache_dir", None)
    return out


TRAINING_FILES = ("checkpoint.pt", "model.pt", "losses.csv")  # what a run has trained


def check_run_dir(cfg: RunConfig, run_dir: Path) -> None:
    """Refuse a folder that holds training of another configuration. A ``config.yaml``
    alone (a run that stopped before its first epoch, e.g. at a wrong data path) is
    simply replaced by the new one."""
    existing = run_dir / "config.yaml"
    trained = any((run_dir / f).exists() for f in TRAINING_FILES)
    if existing.exists() and trained:
        old = RunConfig.load(existing)
        if comparable_config(old.to_dict()) != comparable_config(cfg.to_dict()):
            raise RunConfigMismatch(
                f"{existing}: this run folder holds a run with a different configuration. "
                "Use another output folder, or --fresh to discard the old run.")


def finished_run(cfg: RunConfig, run_dir: Path, resume: bool, progress: bool) -> Path | None:
    """When resuming: refuse another configuration's folder, and for a run of ``cfg``
    that is already complete, record the configuration and return its ``model.pt`` (None:
    there is work to do). Call with the folder's lock held."""
    if not resume:
        return None
    check_run_dir(cfg, run_dir)
    if not is_complete(cfg, run_dir):
        return None
    write_config(cfg, run_dir)
    if progress:
        print(f"{run_dir / 'model.pt'} is complete; nothing to do")
    return run_dir / "model.pt"


def begin_run(cfg: RunConfig, run_dir: Path, resume: bool) -> None:
    """Once the configuration and the data have been read: a fresh start (``resume``
    False) removes the old run's files; then ``config.yaml`` is written."""
    if not resume:
        clear_run_files(run_dir)
    write_config(cfg, run_dir)


def write_config(cfg: RunConfig, run_dir: Path) -> None:
    atomic_write(run_dir / "config.yaml", lambda fh: fh.write(cfg.to_yaml(own_section_only=True)))


def set_determinism(cfg: RunConfig) -> None:
    torch.manual_seed(cfg.train.seed)
    # deterministic: the same run twice gives the same weights; otherwise cuDNN may pick
    # its fastest (autotuned, possibly non-deterministic) kernels
    torch.backends.cudnn.benchmark = not cfg.train.deterministic
    torch.backends.cudnn.deterministic = cfg.train.deterministic


def write_losses(path: Path, losses: list[dict[str, float]], keys: Sequence[str]) -> None:
    """``losses.csv``: a row per epoch, the method's losses and, when the run validates
    (``train.holdout``), its held-out validation columns (empty in epochs without)."""
    val = [k for k in VALIDATION_KEYS if any(k in row for row in losses)]

    def write(fh: Any) -> None:
        w = csv.DictWriter(fh, fieldnames=["epoch", *keys, *val, "seconds"],
                           extrasaction="ignore")
        w.writeheader()
        w.writerows(losses)
    atomic_write(path, write)


def is_complete(cfg: RunConfig, run_dir: str | Path) -> bool:
    """Whether ``run_dir`` holds a finished training of at least ``cfg``'s epochs."""
    done = Path(run_dir) / "train.json"  # written last, after model.pt
    return (Path(run_dir) / "model.pt").exists() and done.exists() \
        and json.loads(done.read_text()).get("epochs", -1) >= cfg.train.epochs


def run_meta(cfg: RunConfig, teacher_source: dict[str, Any], data: Any, device: torch.device,
             t_start: float, **extra: Any) -> dict[str, Any]:
    """What ``train.json`` and ``model.pt`` record of how a run was made: method,
    configuration, teacher (backbone, weights, hash), data, provenance, wall time."""
    from multiad.provenance import provenance

    return {"method": cfg.method, "config": cfg.to_dict(own_section_only=True),
            "teacher": teacher_source,
            "data": {"name": data.name, "kind": data.kind, "root": str(data.root),
                     "layout": data.layout, "counts": data.counts()},
            "epochs": cfg.train.epochs, **extra, "provenance": provenance(device),
            "train_wall_s": round(time.time() - t_start, 2)}


def save_run(run_dir: Path, inference_state: dict[str, Any], meta: dict[str, Any]) -> None:
    """``model.pt`` (the state evaluation needs, with the meta), then ``train.json``: the
    folder is complete once both are written."""
    save_torch(run_dir / "model.pt", {**inference_state, "meta": meta})
    write_json(run_dir / "train.json", meta)
