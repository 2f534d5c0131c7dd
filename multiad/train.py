"""Training and loading a run: the package's entry points.

- ``train(cfg, run_dir)`` / ``train_many([(cfg, run_dir), …])``: the configured method's
  training (Multi-AD: Algorithm 1) into a run folder, resumable
  (:mod:`multiad.engine.loop`, :mod:`multiad.engine.scheduler`);
- ``load_trained(run_dir)``: that method's inference model, ready to evaluate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from multiad.config import RunConfig
from multiad.engine.loop import epoch_order
from multiad.engine.run_folder import comparable_config, is_complete
from multiad.engine.scheduler import TrainingFailed, train, train_many
from multiad.methods import InferenceModel, get_method
from multiad.torch_files import load_torch, save_torch

__all__ = ["TrainingFailed", "comparable_config", "epoch_order", "is_complete",
           "load_trained", "model_file", "save_torch", "train", "train_many"]


def model_file(run_dir: str | Path) -> Path:
    """``run_dir``'s ``model.pt``, or ``FileNotFoundError`` saying to train first."""
    path = Path(run_dir) / "model.pt"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no trained model here. Train first: multiad train "
                                f"--out {run_dir} ...")
    return path


def load_trained(run_dir: str | Path, device: torch.device | str = "cpu",
                 model_overrides: dict[str, Any] | None = None
                 ) -> tuple[InferenceModel, RunConfig, dict[str, Any]]:
    """Rebuild the trained (or fitted) method of a run folder, in eval mode.

    ``model_overrides`` may change the switches of the method's section that act after
    training only (its ``eval_only_keys``; Multi-AD: MFF on/off, its ReLU, sum/product
    fusion, σ); Multi-AD's Ψ is then calibrated from the normal-map statistics the run
    recorded.
    """
    path = model_file(run_dir)
    blob = load_torch(path)
    meta = blob["meta"]
    cfg = RunConfig.from_dict(meta["config"], source=str(path)).validate()
    spec = get_method(cfg.method)
    overrides = dict(model_overrides or {})
    bad = set(overrides) - set(spec.eval_only_keys)
    if bad:
        raise ValueError(f"{path}: {sorted(bad)} change training; only "
                         f"{', '.join(spec.eval_only_keys) or 'nothing'} can vary for a "
                         f"trained {spec.title} model")
    if overrides:
        cfg = cfg.with_overrides([f"{spec.section}.{k}={v}"
                                  for k, v in overrides.items()]).validate()
    model = spec.load(cfg, blob, recalibrate=bool(overrides))
    return model.to(device).eval(), cfg, meta
