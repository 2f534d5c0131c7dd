"""Results on MVTec LOCO AD (and the embedded set in its layout) next to MHKD's Table I.

Every "here" value is read from a run's ``metrics.json`` (its ``auspro`` entry, written by
:func:`multiad.data.mvtec_loco.loco_auspro`, and its per-test-folder ``per_defect``
metrics); every "reported" value from ``multiad/reference/related_reported.csv``:

- MHKD's Table I, "pixel-sPRO" of eighteen methods on the five categories, as printed
  and ×100 (presumably MVTec's AUsPRO to FPR 0.05, which it does not state; most rows
  taken from the methods' own papers); its "RD", "Patch Core", "Efficient AD" and "Ours"
  are named RD4AD, PatchCore, EfficientAD and MHKD here;
- the image AUROC of its Fig. 4 text (0.91, the average only);
- its Table II's MVTec AD column (image / pixel AUROC).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from multiad.pipeline.comparison import method_title
from multiad.pipeline.results import mean_std, related_reference

TYPES = ("logical_anomalies", "structural_anomalies")
# MHKD's Table I column order
LOCO_ORDER = ("breakfast_box", "screw_bag", "pushpins", "splicing_connectors", "juice_bottle")


def _metrics(run: str) -> dict[str, Any]:
    return json.loads((Path(run) / "metrics.json").read_text())["metrics"]


def _pct(v: Any) -> float | None:
    return 100 * v if isinstance(v, float) else None


def loco_rows(df: pd.DataFrame) -> pd.DataFrame:
    """One row per run of ``df`` that has an AUsPRO (a LOCO-layout test set): image AUROC
    and AUsPRO of the logical and the structural anomalies (each against every good test
    image) and the AUsPRO's mean (%), as MVTec's script reports them."""
    rows = []
    for _, r in df.iterrows() if len(df) else []:
        m = _metrics(r.run)
        sp = m.get("auspro")
        if not sp:
            continue
        per = m.get("per_defect", {})
        row = {"dataset_id": r.dataset_id, "paper_dataset": r.paper_dataset,
               "method": r.method, "seed": r.seed, "image_auroc": r.image_auroc}
        for t in TYPES:
            short = t.split("_")[0]
            row[f"image_auroc_{short}"] = _pct(per.get(t, {}).get("image_auroc"))
            row[f"auspro_{short}"] = _pct(sp["per_group"].get(t))
        row["auspro_mean"] = _pct(sp.get("mean"))
        # MVTec's script (and MHKD's 91.0) classify per folder: the mean of the two AUROCs
        types = [row["image_auroc_logical"], row["image_auroc_structural"]]
        row["image_auroc_types"] = (sum(types) / 2 if None not in types else None)
        rows.append(row)
    out = pd.DataFrame(rows)
    numeric = [c for c in out.columns if c.startswith(("image_auroc", "auspro"))]
    return out.astype({c: float for c in numeric}) if len(out) else out


def auspro_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per dataset and method, mean ± std over seeds (%): image AUROC (the mean of the
    logical and the structural one, as MVTec's script reports it; then each) and AUsPRO
    (logical, structural, mean)."""
    long = loco_rows(df)
    if not len(long):
        return pd.DataFrame()
    cols = {"image_auroc_types": "image AUROC", "image_auroc_logical": "image logical",
            "image_auroc_structural": "image structural", "auspro_logical": "AUsPRO logical",
            "auspro_structural": "AUsPRO structural", "auspro_mean": "AUsPRO mean"}
    out = long.groupby(["dataset_id", "method"], sort=False).agg(
        seeds=("seed", "size"), **{name: (k, mean_std) for k, name in cols.items()})
    return out.reset_index()


def auspro_per_defect(df: pd.DataFrame) -> pd.DataFrame:
    """AUsPRO (%) per defect name of ``defects_config.json``, per dataset and method, mean ±
    std over seeds: the images whose regions all carry that name, with every good image
    (:func:`multiad.metrics.spro.auspro_per_name`)."""
    rows = []
    for _, r in df.iterrows() if len(df) else []:
        sp = _metrics(r.run).get("auspro") or {}
        for name, v in (sp.get("per_defect") or {}).items():
            rows.append({"dataset": r.dataset_id, "method": r.method, "defect": name,
                         "images": v["images"], "mixed": v["mixed"],
                         "auspro": _pct(v["auspro"])})
    if not rows:
        return pd.DataFrame()
    out = pd.DataFrame(rows).groupby(["dataset", "defect", "method"], sort=False).agg(
        images=("images", "first"), **{"with other defects": ("mixed", "first")},
        AUsPRO=("auspro", mean_std))
    return out.reset_index()


def auspro_per_defect_wide(df: pd.DataFrame) -> pd.DataFrame:
    """:func:`auspro_per_defect` with one column per method (in ``df``'s order): a row per
    dataset and defect name."""
    long = auspro_per_defect(df)
    if not len(long):
        return long
    keys = ["dataset", "defect", "images", "with other defects"]
    wide = long.pivot(index=keys, columns="method", values="AUsPRO")
    order = [m for m in dict.fromkeys(df.method) if m in wide.columns]
    out = wide[order].reset_index()
    out.columns.name = None
    return out


def mhkd_table1(df: pd.DataFrame) -> pd.DataFrame:
    """MHKD's Table I with our re-runs: per MVTec LOCO AD category (its order, then the
    average) and method, the AUsPRO mean here, as MHKD's paper reports it, and Δ; the
    image AUROC here, the mean of the logical and the structural one (MHKD reports 91.0
    as its average only). The average here needs all five categories, each with a
    defined value. The package's methods only: those that ran here first, then those
    MHKD reports that did not (the others of its table: :func:`mhkd_table1_reported`)."""
    from multiad.methods import METHODS

    ref = related_reference()
    ref = ref[ref.table.isin(["mhkd_table1", "mhkd_fig4"])]
    long = loco_rows(df)
    if len(long):
        long = long[long.paper_dataset.isin(LOCO_ORDER)]
    titles = {m: method_title(m) for m in (long.method.unique() if len(long) else [])}
    ran = list(titles.values())
    ours = {method_title(m) for m in METHODS}
    reported = [m for m in ref.method.drop_duplicates() if m in ours and m not in ran]

    def paper(dataset: str, method: str, metric: str) -> float | None:
        v = ref[(ref.dataset == dataset) & (ref.method == method) & (ref.metric == metric)]
        return float(v.value_percent.iloc[0]) if len(v) else None

    rows = []
    for dataset in (*LOCO_ORDER, "average"):
        for method in (*ran, *reported):
            g = long[(long.method.map(titles) == method)] if len(long) else long
            here = image = None
            if dataset != "average":
                g = g[g.paper_dataset == dataset] if len(g) else g
                if len(g):  # NaN where a run's value was undefined
                    here, image = g.auspro_mean.mean(), g.image_auroc_types.mean()
            elif len(g):  # the mean over the five categories' means, when all five ran
                per = g.groupby("paper_dataset")[["auspro_mean", "image_auroc_types"]].mean()
                if set(LOCO_ORDER) <= set(per.index):
                    per = per.loc[list(LOCO_ORDER)]
                    here, image = per.auspro_mean.mean(skipna=False), \
                        per.image_auroc_types.mean(skipna=False)
            rep = paper(dataset, method, "auspro")
            if here is None and rep is None:
                continue
            rows.append({
                "category": dataset, "method": method,
                "AUsPRO here": _cell(here, "not run"),
                "AUsPRO reported": f"{rep:.1f}" if rep is not None else "—",
                "Δ": f"{here - rep:+.1f}" if here is not None and rep is not None
                and here == here else "—",
                "image AUROC here": _cell(image, "—"),
                "image AUROC reported": (f"{paper(dataset, method, 'image_auroc'):.1f}"
                                         if paper(dataset, method, "image_auroc") else "—")})
    return pd.DataFrame(rows)


def _cell(v: float | None, missing: str) -> str:
    if v is None:
        return missing
    return "undefined" if v != v else f"{v:.1f}"


def mhkd_table1_reported() -> pd.DataFrame:
    """MHKD's Table I as printed (AUsPRO %, its method and column order; — where it gives
    none)."""
    ref = related_reference()
    ref = ref[ref.table == "mhkd_table1"]
    wide = ref.pivot_table(index="method", columns="dataset", values="value_percent",
                           sort=False)
    wide = wide.reindex(columns=[*LOCO_ORDER, "average"]).astype(object)
    return wide.where(wide.notna(), "—").reset_index()
