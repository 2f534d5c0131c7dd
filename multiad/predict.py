"""Apply a trained run to a folder of the user's own images: overlays + a CSV of scores."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from multiad.atomic import atomic_write
from multiad.data import DataError, Sample, preload
from multiad.data.image_io import decoded_size
from multiad.evaluate import infer
from multiad.provenance import select_device
from multiad.train import load_trained
from multiad.viz import overlay, save_png

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def list_images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder. Give a folder of images to score.")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
                   and not p.name.startswith("."))
    if not files:
        raise DataError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) found.")
    return files


def overlay_name(rel: Path) -> Path:
    """The overlay of image ``rel``: its whole name plus ``.png`` (``x.png`` and ``x.jpg``
    get distinct overlays)."""
    return rel.with_name(rel.name + ".png")


def readable(files: list[Path], progress: bool = False) -> tuple[list[Path], list[dict[str, str]]]:
    """The files that decode, and a failure row (image, error) for each that does not."""
    good, failures = [], []
    for f in tqdm(files, desc="check images", disable=not progress, leave=False):
        try:
            decoded_size(f)
            good.append(f)
        except DataError as exc:
            failures.append({"image": str(f), "error": str(exc)})
    return good, failures


def predict_folder(run_dir: str | Path, input_dir: str | Path, out_dir: str | Path, *,
                   device: str = "auto", progress: bool = True
                   ) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Score every image under ``input_dir``; write ``scores.csv`` and overlays to ``out_dir``
    and, when some images cannot be read, ``failures.csv`` (they are skipped, the rest are
    scored). Returns the score rows and the failure rows.

    ``above_train_max`` flags images scoring above every normal training image: a
    heuristic hint, not a calibrated decision threshold.
    """
    dev = select_device(device)
    model, cfg, meta = load_trained(run_dir, dev)
    input_dir, out_dir = Path(input_dir), Path(out_dir)
    files, failures = readable(list_images(input_dir), progress)
    if failures:
        _write_csv(out_dir / "failures.csv", failures)
    if not files:
        raise DataError(f"{input_dir}: none of its {len(failures)} images can be read; see "
                        f"{out_dir / 'failures.csv'}")
    samples = [Sample(image=f, mask=None, label=0, defect="unlabelled") for f in files]
    images = preload(samples, size=cfg.data.image_size, cache_dir=None, progress=progress).images
    res = infer(model, images, dev, cfg.train.eval_batch_size, cfg.train.amp, progress,
                desc="predict")
    smoothed = res.smoothed.numpy()
    vmin = float(np.quantile(smoothed, 0.01))
    vmax = max(float(smoothed.max()), meta["train_scores"]["max"])
    ref = meta["train_scores"]["max"]
    rows = []
    rgb = images.permute(0, 2, 3, 1).numpy()
    for i, f in enumerate(files):
        rel = f.relative_to(input_dir)
        png = out_dir / "overlays" / overlay_name(rel)
        save_png(png, overlay(rgb[i], smoothed[i], vmin, vmax))
        score = float(res.scores[i])
        rows.append({"image": str(rel), "score": score, "above_train_max": score > ref,
                     "overlay": str(png.relative_to(out_dir))})

    _write_csv(out_dir / "scores.csv", rows)
    return rows, failures


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    def write(fh: Any) -> None:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)

    atomic_write(path, write)
