"""The metrics the field reports beyond the paper's two AUROCs, read back from runs: the
ADer benchmark's seven (image and pixel AUROC, AP, F1-max; AUPRO) with their mean mAD,
and AUPIMO (:mod:`multiad.metrics.aupimo`) per image. Every value comes from a run's
``metrics.json``."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from multiad.pipeline.results import mean_std

#: metrics.json key → column title, in the order ADer reports them, then AUPIMO.
ALL_METRICS = {"image_auroc": "I-AUROC", "image_ap": "I-AP", "image_f1_max": "I-F1max",
               "pixel_auroc": "P-AUROC", "pixel_ap": "P-AP", "pixel_f1_max": "P-F1max",
               "aupro": "AUPRO", "mad": "mAD", "aupimo": "AUPIMO"}


def _metrics_of(run: str) -> dict[str, Any]:
    return json.loads((Path(run) / "metrics.json").read_text())["metrics"]


def all_metrics_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per dataset and method (rows of :func:`multiad.pipeline.results.collect`): every metric of
    :data:`ALL_METRICS` in %, mean ± std over seeds; ``—`` where a run has none (a run
    written before these metrics, or AUPIMO with too few normal pixels)."""
    from multiad.pipeline.comparison import method_title

    rows = []
    for run, ds, method in zip(df.run, df.dataset_id, df.method, strict=True) if len(df) \
            else []:
        m = _metrics_of(run)
        rows.append({"dataset": ds, "method": method_title(method),
                     **{k: 100 * m[k] if isinstance(m.get(k), float) else None
                        for k in ALL_METRICS}})
    if not rows:
        return pd.DataFrame(columns=["dataset", "method", "seeds", *ALL_METRICS.values()])
    long = pd.DataFrame(rows)
    out = long.groupby(["dataset", "method"], sort=False).agg(
        seeds=("dataset", "size"), **{t: (k, mean_std) for k, t in ALL_METRICS.items()})
    return out.reset_index()


def aupimo_per_image(df: pd.DataFrame) -> pd.DataFrame:
    """One row per anomalous test image of every run: dataset, method, seed, its AUPIMO
    (%). Runs without AUPIMO contribute none."""
    from multiad.pipeline.comparison import method_title

    rows = []
    for run, ds, method, seed in zip(df.run, df.dataset_id, df.method, df.seed,
                                     strict=True) if len(df) else []:
        values = _metrics_of(run).get("aupimo_per_image")
        rows += [{"dataset": ds, "method": method_title(method), "seed": seed,
                  "aupimo": 100 * v} for v in values or [] if v is not None]
    return pd.DataFrame(rows, columns=["dataset", "method", "seed", "aupimo"])


def plot_aupimo(df: pd.DataFrame, ax: Any = None) -> Any:
    """Per-image AUPIMO by method (box and points; one box per method and dataset): the
    spread a pooled pixel AUROC hides. Returns the axes (None when no run has AUPIMO)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    long = aupimo_per_image(df)
    if long.empty:
        return None
    if ax is None:
        n = long.method.nunique()
        _, ax = plt.subplots(figsize=(max(6.0, 0.9 * n * long.dataset.nunique()), 3.4))
    with warnings.catch_warnings():  # seaborn's own call of a deprecated matplotlib argument
        warnings.simplefilter("ignore", DeprecationWarning)
        sns.boxplot(long, x="method", y="aupimo", hue="dataset", ax=ax, fliersize=0,
                    linewidth=0.8)
    sns.stripplot(long, x="method", y="aupimo", hue="dataset", dodge=True, ax=ax, size=2.5,
                  palette=["0.25"] * long.dataset.nunique(), legend=False)
    ax.set_ylim(-2, 102)
    ax.set_ylabel("AUPIMO per image (%)")
    ax.set_xlabel("")
    ax.tick_params(axis="x", labelrotation=30)
    ax.grid(axis="y", alpha=0.3)
    if long.dataset.nunique() > 1:
        ax.legend(fontsize=7, title=None, loc="best")
    elif ax.get_legend() is not None:
        ax.get_legend().remove()  # one dataset: the page's title names it
    return ax
