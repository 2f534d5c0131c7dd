"""The paper's qualitative figures, rebuilt from finished runs (Figures 6, 7 and 8).

Every panel is image | ground truth | anomaly map, chosen by a rule written here and on the
book page, never by eye:

- Figures 6 (medical) and 7 (industrial): for each dataset, the anomalous test image with
  the *median* image score (a typical case) and the one with the highest (the clearest).
- Figure 8 (industrial): *scratches* are the defect types whose name contains "scratch";
  *minor* and *major* defects are the other anomalous images whose ground-truth area is in
  the lowest / highest quarter of all industrial anomalous images; from each case the image
  with the median score.

The maps are recomputed from the run's stored layer maps (``maps.npz``) with the method's
own combination (Multi-AD: the run's Ψ calibration and σ), so no image is re-run through
the network.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from multiad.config import RunConfig
from multiad.methods import get_method
from multiad.viz import example_grid

FIGURE_RULES = {
    "typical_and_best": "for each dataset the anomalous test image with the median image "
                        "score (typical) and the one with the highest score (clearest)",
    "cases": "scratches: defect types named '*scratch*'; minor / major: other anomalous "
             "images whose ground-truth area is in the lowest / highest quarter of all "
             "industrial anomalous images; from each case the image with the median score",
}


@dataclass
class Case:
    """One test image of one run, and why it was chosen."""

    run: Path
    index: int
    defect: str
    score: float
    gt_area: float
    why: str


def per_image(run: str | Path) -> list[dict[str, str]]:
    path = Path(run) / "per_image.csv"
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing — evaluate the run again "
                                f"(multiad evaluate --run {run}) to write it")
    with path.open() as fh:
        return list(csv.DictReader(fh))


def _median(rows: list[dict[str, str]]) -> dict[str, str]:
    rows = sorted(rows, key=lambda r: float(r["score"]))
    return rows[(len(rows) - 1) // 2]


def typical_and_best(run: str | Path) -> list[Case]:
    """Figures 6/7 rule for one run: median- and top-scoring anomalous images."""
    anomalous = [r for r in per_image(run) if r["label"] == "1"]
    if not anomalous:
        return []
    med = _median(anomalous)
    best = max(anomalous, key=lambda r: float(r["score"]))
    picks = [(med, "median score")] + ([(best, "highest score")] if best is not med else [])
    return [Case(Path(run), int(r["index"]), r["defect"], float(r["score"]),
                 float(r["gt_area"]), why) for r, why in picks]


def defect_cases(runs: Sequence[str | Path]) -> dict[str, Case | None]:
    """Figure 8 rule over the industrial runs: a scratch, a minor and a major defect."""
    rows = [(Path(run), r) for run in runs for r in per_image(run) if r["label"] == "1"]
    out: dict[str, Case | None] = {"scratch": None, "minor": None, "major": None}
    if not rows:
        return out
    areas = np.array([float(r["gt_area"]) for _, r in rows])
    lo, hi = np.quantile(areas, [0.25, 0.75])
    pools = {
        "scratch": [x for x in rows if "scratch" in x[1]["defect"].lower()],
        "minor": [x for x in rows if "scratch" not in x[1]["defect"].lower()
                  and float(x[1]["gt_area"]) <= lo],
        "major": [x for x in rows if "scratch" not in x[1]["defect"].lower()
                  and float(x[1]["gt_area"]) >= hi],
    }
    for name, pool in pools.items():
        if pool:
            pool = sorted(pool, key=lambda x: float(x[1]["score"]))
            run, r = pool[(len(pool) - 1) // 2]
            out[name] = Case(run, int(r["index"]), r["defect"], float(r["score"]),
                             float(r["gt_area"]), f"{name}, median score of {len(pool)}")
    return out


class RunMaps:
    """A finished run's test images, masks and smoothed anomaly maps, loaded lazily."""

    def __init__(self, run: str | Path) -> None:
        from multiad.data import load_split

        self.run = Path(run)
        metrics = json.loads((self.run / "metrics.json").read_text())
        self.cfg = RunConfig.from_dict(metrics["config"], source=str(self.run)).validate()
        trained = Path(metrics.get("trained_in") or self.run)
        meta = json.loads((trained / "train.json").read_text())
        self.spec = get_method(self.cfg.method)
        self.combine = self.spec.combiner(self.cfg, meta)
        maps_file = self.run / "maps.npz"
        if not maps_file.exists():
            raise FileNotFoundError(f"{maps_file}: missing — this run was evaluated without "
                                    "saving maps; evaluate it again with maps")
        self.maps = np.load(maps_file)
        self.vmin, self.vmax = metrics["figures"]["vmin"], metrics["figures"]["vmax"]
        _, self.split = load_split(self.cfg.data, "test", progress=False)

    def smoothed(self, index: int) -> np.ndarray:
        """The smoothed anomaly map of one test image, from its stored layer maps (Multi-AD:
        Eqs. 14–15)."""
        layers = [torch.from_numpy(self.maps[name][index:index + 1].astype(np.float32))[:, None]
                  for name in self.spec.layer_names]
        size = (self.cfg.data.image_size, self.cfg.data.image_size)
        return self.combine(layers, size)[0].numpy()

    def panel(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        image = self.split.images[index].permute(1, 2, 0).numpy()
        return image, self.split.masks[index].numpy(), self.smoothed(index)


def draw(path: str | Path, cases: Sequence[Case], titles: Sequence[str],
         compare: Sequence[tuple[str, Callable[[Path], Path]]] = ()) -> Path:
    """Rows of image | ground truth | anomaly map for ``cases`` (one colour scale per run:
    its maps' 1st percentile to maximum over the test set). ``compare``: (title, the run
    folder of another method for a case's run) — that method's map of the same test image
    in a further column (the paper shows its baselines' heatmaps so), "not run" where the
    folder has no evaluated run."""
    loaded: dict[Path, RunMaps] = {}

    def scaled(run: Path, index: int) -> np.ndarray:
        rm = loaded.setdefault(run, RunMaps(run))
        return (rm.smoothed(index) - rm.vmin) / max(rm.vmax - rm.vmin, 1e-12)

    images, masks, maps, labels = [], [], [], []
    more: list[tuple[str, list[np.ndarray | None]]] = [(name, []) for name, _ in compare]
    for case, title in zip(cases, titles, strict=True):
        rm = loaded.setdefault(case.run, RunMaps(case.run))
        img, mask, _ = rm.panel(case.index)
        images.append(img)
        masks.append(mask)
        maps.append(scaled(case.run, case.index))
        labels.append(title)
        for (_, column), (_, where) in zip(more, compare, strict=True):
            other = where(case.run)
            same = (other / "maps.npz").exists() and same_image(other, case)
            column.append(scaled(other, case.index) if same else None)
    return example_grid(path, images, masks, maps, labels, 0.0, 1.0, more)


def same_image(run: Path, case: Case) -> bool:
    """Whether test image ``case.index`` of ``run`` is the case's image (same split order)."""
    rows = per_image(run)
    return case.index < len(rows) and rows[case.index]["path"] == \
        per_image(case.run)[case.index]["path"]
