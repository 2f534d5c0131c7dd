"""Evaluation of a trained run on its test split: maps, scores, metrics, example heatmaps.

Writes into the run folder (all atomically):
- ``metrics.json``: image AUROC, pixel AUROC, AUPRO, F1-max, per-defect breakdown (for
  MVTec LOCO AD also the official AUsPRO under ``auspro``), plus config, data counts,
  teacher weights, seed, commit, device and wall time;
- ``maps.npz``: the method's layer maps of every test image (Multi-AD: M^(1..4); float16,
  native resolution — the fused and smoothed maps are recomputed from them), scores, labels,
  defect types and paths;
- ``explorer.npz``: a quantised subset (images, masks, layer and fused maps) for the
  heatmap explorer (``multiad.pipeline.explore``);
- ``per_image.csv``: each test image's score and ground-truth area (Figure 8's rule);
- ``heatmaps/``: an example grid and per-image overlays.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from multiad.atomic import atomic_path, atomic_write, write_json
from multiad.data import LocoData, load_split, loco_auspro, normalize
from multiad.engine.run_lock import RunLock, claim_run_folder
from multiad.explorer_data import save_explorer_data
from multiad.methods import InferenceModel, get_method
from multiad.metrics import evaluate_test_set
from multiad.provenance import provenance, select_device
from multiad.train import load_trained, model_file
from multiad.viz import example_grid, overlay, save_png


@dataclass
class Inference:
    """Model output for a whole split, on the CPU."""

    scores: torch.Tensor  # N float32
    smoothed: torch.Tensor  # N×H×W float32
    layer_maps: list[torch.Tensor]  # the method's layer maps, each N×h×w float16


@torch.no_grad()
def infer(model: InferenceModel, images_u8: torch.Tensor, device: torch.device,
          batch_size: int = 32, amp: bool = True, progress: bool = True,
          desc: str = "inference") -> Inference:
    """The method's maps and scores (Multi-AD: Eqs. 13–15) of uint8 N×3×H×W images, in
    batches."""
    model.eval()
    scores, smoothed, layers = [], [], []
    use_amp = amp and device.type == "cuda"
    for i in tqdm(range(0, len(images_u8), batch_size), desc=desc, disable=not progress,
                  leave=False):
        x = normalize(images_u8[i:i + batch_size].to(device), model.teacher.mean,
                      model.teacher.std)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            out = model.predict(x)
        scores.append(out.score.float().cpu())
        smoothed.append(out.smoothed.float().cpu())
        if not layers:
            layers = [[] for _ in out.layer_maps]
        for n, m in enumerate(out.layer_maps):
            layers[n].append(m[:, 0].to(torch.float16).cpu())
    return Inference(scores=torch.cat(scores), smoothed=torch.cat(smoothed),
                     layer_maps=[torch.cat(m) for m in layers])


def _to_rgb_u8(images_u8: torch.Tensor) -> np.ndarray:
    return images_u8.permute(0, 2, 3, 1).numpy()


def pick_examples(scores: np.ndarray, labels: np.ndarray, defects: list[str],
                  per_type: int = 1) -> list[int]:
    """The rule for example figures: for every defect type its highest-scoring image(s),
    then the highest-scoring normal image (the hardest normal case)."""
    chosen: list[int] = []
    for d in sorted(set(defects)):
        idx = [i for i, x in enumerate(defects) if x == d]
        if d == "good" or not idx:
            continue
        chosen += sorted(idx, key=lambda i: -scores[i])[:per_type]
    normal = [i for i in range(len(labels)) if labels[i] == 0]
    if normal:
        chosen.append(max(normal, key=lambda i: scores[i]))
    return chosen


def write_heatmaps(out_dir: Path, images_rgb: np.ndarray, masks: np.ndarray,
                   smoothed: np.ndarray, scores: np.ndarray, labels: np.ndarray,
                   defects: list[str], paths: list[str], max_overlays: int) -> dict[str, Any]:
    """Example grid (rule: ``pick_examples``) and up to ``max_overlays`` overlays."""
    vmin, vmax = float(np.quantile(smoothed, 0.01)), float(smoothed.max())
    ex = pick_examples(scores, labels, defects)
    grid = example_grid(out_dir / "examples.png", [images_rgb[i] for i in ex],
                        [masks[i] for i in ex], [smoothed[i] for i in ex],
                        [f"{defects[i]} · score {scores[i]:.3f}" for i in ex], vmin, vmax)
    order = np.argsort(-scores)[:max_overlays]
    for i in order:
        stem = Path(paths[i]).stem
        save_png(out_dir / f"{defects[i]}_{stem}.png",
                 overlay(images_rgb[i], smoothed[i], vmin, vmax))
    return {"examples": grid.name, "overlays": int(len(order)), "vmin": vmin, "vmax": vmax,
            "example_rule": "highest-scoring image of each defect type + highest-scoring "
                            "normal image"}


def write_per_image(path: Path, paths: list[str], defects: list[str], labels: np.ndarray,
                    scores: np.ndarray, masks: np.ndarray) -> None:
    """One row per test image: its score and the ground-truth area (for Figure 8's rule)."""
    area = masks.reshape(len(masks), -1).astype(bool).mean(axis=1)

    def write(fh: Any) -> None:
        w = csv.writer(fh)
        w.writerow(["index", "path", "defect", "label", "score", "gt_area"])
        for i, p in enumerate(paths):
            w.writerow([i, p, defects[i], int(labels[i]), f"{scores[i]:.6g}", f"{area[i]:.6g}"])
    atomic_write(path, write)


def evaluate(run_dir: str | Path, *, device: str = "auto", progress: bool = True,
             max_overlays: int = 32, save_maps: bool = True, out_dir: str | Path | None = None,
             model_overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Evaluate ``run_dir``'s model on its test split and write the results there.

    ``model_overrides`` evaluates the same trained student under other post-training
    switches (the method's ``eval_only_keys``; Multi-AD: MFF, its ReLU, map fusion, σ) and
    ``out_dir`` puts that variant's results in their own folder.
    """
    t0 = time.time()
    trained_dir = Path(run_dir)
    run_dir = Path(out_dir) if out_dir is not None else trained_dir
    model_file(trained_dir)  # a missing model is said before any folder is made or locked
    with RunLock(claim_run_folder(run_dir), "evaluate"):
        return _evaluate_locked(trained_dir, run_dir, device, progress, max_overlays,
                                save_maps, model_overrides, t0)


def _evaluate_locked(trained_dir: Path, run_dir: Path, device: str, progress: bool,
                     max_overlays: int, save_maps: bool,
                     model_overrides: dict[str, Any] | None, t0: float) -> dict[str, Any]:
    dev = select_device(device)
    model, cfg, meta = load_trained(trained_dir, dev, model_overrides)
    spec = get_method(cfg.method)
    data, split = load_split(cfg.data, "test", progress)
    res = infer(model, split.images, dev, cfg.train.eval_batch_size, cfg.train.amp, progress,
                desc=f"evaluate {data.name}")
    labels = split.labels.numpy()
    has_masks = bool(getattr(data, "has_masks", True))
    metrics = evaluate_test_set(res.scores.numpy(), labels,
                                res.smoothed if has_masks else None,
                                split.masks if has_masks else None, split.defects)
    if isinstance(data, LocoData):  # sPRO over the per-defect mask files, FPR ≤ 0.05
        metrics["auspro"] = loco_auspro(data, res.smoothed)
    figures = write_heatmaps(run_dir / "heatmaps", _to_rgb_u8(split.images),
                             split.masks.numpy(), res.smoothed.numpy(), res.scores.numpy(),
                             labels, split.defects, split.paths, max_overlays)
    write_per_image(run_dir / "per_image.csv", split.paths, split.defects, labels,
                    res.scores.numpy(), split.masks.numpy())
    if save_maps:
        save_explorer_data(run_dir / "explorer.npz", _to_rgb_u8(split.images),
                           split.masks.numpy(), [m.float().numpy() for m in res.layer_maps],
                           res.smoothed.numpy(), res.scores.numpy(), labels, split.defects,
                           split.paths, layer_names=spec.layer_names)
        with atomic_path(run_dir / "maps.npz") as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(fh, scores=res.scores.numpy(), labels=labels,
                                defects=np.array(split.defects), paths=np.array(split.paths),
                                **{name: m.numpy() for name, m in zip(
                                    spec.layer_names, res.layer_maps, strict=True)})
    result = {
        "metrics": metrics,
        "run": str(run_dir),
        "trained_in": str(trained_dir),
        "model_overrides": dict(model_overrides or {}),
        "config": cfg.to_dict(own_section_only=True),
        "teacher": meta["teacher"],
        "seed": cfg.train.seed,
        "epochs_trained": meta["epochs"],
        "data": {"name": data.name, "kind": data.kind, "root": str(data.root),
                 "layout": data.layout, "counts": data.counts()},
        "figures": figures,
        "provenance": provenance(dev),
        "train_provenance": meta["provenance"],
        "eval_wall_s": round(time.time() - t0, 2),
        "train_wall_s": meta["train_wall_s"],
    }
    write_json(run_dir / "metrics.json", result)
    return result

