"""The quality-floor setting of tests/test_quality.py, for the benchmark scripts that study
one method in it: the embedded sets (textures, phantoms, the real-texture gravel; 32 normal
training images, 10 normal and 6 per defect type in test, 256×256), the pretrained offline
backbone EfficientNet-Lite0, batch 8, CPU, seed-controlled."""

from __future__ import annotations

import csv
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from multiad.config import RunConfig

SETS = ("texture", "medical", "realtex")
SETTING = {"backbone": "efficientnet_lite0", "image_size": 256, "n_train": 32, "batch_size": 8}


def make_sets(work: Path) -> None:
    """Generate the embedded sets under ``work/data``."""
    from multiad.data.synthetic import make_synthetic

    for cat in SETS:
        make_synthetic(cat, work / "data" / cat, seed=0, size=256, n_train=32,
                       n_test_good=10, n_test_per_defect=6)


def quality_config(method: str, cat: str, work: Path, *overrides: str) -> RunConfig:
    """``method`` on set ``cat`` in the setting (seed 0 unless an override sets it)."""
    from multiad.config import RunConfig

    return RunConfig().with_overrides([
        f"method={method}", "teacher.backbone=efficientnet_lite0", "teacher.weights=imagenet",
        "data.kind=synthetic", f"data.root={work / 'data' / cat}", f"data.category={cat}",
        "data.image_size=256", f"data.cache_dir={work / 'cache'}", "train.batch_size=8",
        "train.device=cpu", "train.seed=0", *overrides])


def run_metrics(run: Path, out: Path) -> dict[str, Any]:
    """Image and pixel AUROC and AUPRO of a trained run, rounded to 4 digits."""
    from multiad.evaluate import evaluate

    m = evaluate(run, device="cpu", progress=False, max_overlays=0, save_maps=False,
                 out_dir=out)["metrics"]
    return {k: round(float(m[k]), 4) for k in ("image_auroc", "pixel_auroc", "aupro")}


def read_losses(run: Path) -> list[dict[str, float]]:
    """A run's ``losses.csv``, one dict per epoch."""
    with open(run / "losses.csv", encoding="utf-8") as fh:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]


@contextmanager
def study(kind: str, out: str, **fields: Any) -> Iterator[tuple[dict[str, Any], Path]]:
    """(the result, a work folder holding both sets): the caller appends to
    ``result["runs"]``; on success the result is written (``result_file.write_result``)
    and the work folder is removed either way."""
    import torch
    from result_file import write_result

    from multiad.provenance import provenance

    res: dict[str, Any] = {"kind": kind, **SETTING, **fields,
                           **provenance(torch.device("cpu")), "runs": []}
    info = res["device"]
    res["device"] = f"{info['name']} ({info['cores']} cores)"
    work = Path(tempfile.mkdtemp(prefix=f"{kind}-"))
    try:
        make_sets(work)
        yield res, work
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_result(res, out, kind)
