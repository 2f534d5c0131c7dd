"""Tables 2 and 3 with every method re-run here: each method's numbers from our runs next
to the paper's, as reported, and the difference — the comparison the paper makes, under
one set of conditions (same data, preprocessing, exact metrics, seeds and teacher files).

Rows: (dataset, method); a method the profile did not re-run shows its reported numbers
only. Every "here" value is read from a run's ``metrics.json`` (mean ± std over seeds).
For the related systems, which the paper does not run, "paper" is their own paper's
number where it reports the dataset (MHKD's Table II on MVTec AD); the ``reported in``
column says whose.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from multiad.pipeline.results import domain_average, mean_std, paper_reference, related_reference

PAPER_METHODS = ("Multi-AD", "PaDiM", "PatchCore", "SimpleNet", "STFPM", "RD4AD", "MKD")


def method_title(name: str) -> str:
    """The paper's name of a method of ``multiad.methods`` (e.g. rd4ad → RD4AD)."""
    from multiad.methods import get_method

    return get_method(name).title


SOURCES = {"table2": "Multi-AD Table 2", "table3": "Multi-AD Table 3",
           "mhkd_table2": "MHKD Table II"}


def reference(domain: str) -> pd.DataFrame:
    """The paper's Tables 2–3 rows of ``domain`` and the related systems' own numbers on
    the same datasets (methods the paper does not run)."""
    ref, rel = paper_reference(), related_reference()
    rel = rel[(rel.domain == domain) & ~rel.method.isin(PAPER_METHODS)]
    return pd.concat([ref[ref.domain == domain], rel[ref.columns]], ignore_index=True)


def _paper(ref: pd.DataFrame, dataset: str | None, method: str, metric: str) -> float | None:
    v = ref[(ref.dataset == dataset) & (ref.method == method) & (ref.metric == metric)]
    return float(v.value_percent.iloc[0]) if len(v) else None


def _source(ref: pd.DataFrame, dataset: str | None, method: str) -> str:
    v = ref[(ref.dataset == dataset) & (ref.method == method)]
    return SOURCES.get(v.table.iloc[0], v.table.iloc[0]) if len(v) else "—"


def _cells(g: pd.DataFrame, paper: dict[str, float | None]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for metric, short in (("image_auroc", "I"), ("pixel_auroc", "P")):
        ours = g[metric].dropna() if len(g) else pd.Series(dtype=float)
        row[f"{short} here"] = mean_std(g[metric]) if len(g) else "not run"
        row[f"{short} paper"] = f"{paper[metric]:.1f}" if paper[metric] is not None else "—"
        row[f"Δ {short}"] = (f"{ours.mean() - paper[metric]:+.1f}"
                             if paper[metric] is not None and len(ours) else "—")
    row["AUPRO here"] = mean_std(g["aupro"]) if len(g) else "—"
    return row


def rerun_table(df: pd.DataFrame, domain: str) -> pd.DataFrame:
    """One row per (dataset that ran, method): here, as reported, Δ (AUROC %), AUPRO here;
    then the paper's average row per method, with ours where every dataset of the domain
    ran."""
    ref = reference(domain)
    titles = {m: method_title(m) for m in (df.method.unique() if len(df) else [])}
    rows = []
    for ds_id, g in (df.groupby("dataset_id", sort=False) if len(df) else []):
        name = g.paper_dataset.iloc[0]
        ran = {titles[m]: gm for m, gm in g.groupby("method", sort=False)}
        for method in [*[t for t in titles.values() if t not in PAPER_METHODS], *PAPER_METHODS]:
            gm = ran.get(method, g.iloc[0:0])
            paper = {k: _paper(ref, name, method, k) for k in ("image_auroc", "pixel_auroc")}
            if not len(gm) and paper["image_auroc"] is None:
                continue  # neither run here nor reported for this dataset
            rows.append({"dataset": name or ds_id, "method": method, "seeds": len(gm),
                         **_cells(gm, paper), "reported in": _source(ref, name, method)})
    # the average rows: the paper's methods, and a related system that ran and reports one
    extra = [t for t in titles.values() if t not in PAPER_METHODS
             and _paper(ref, "average", t, "image_auroc") is not None]
    for method in (*extra, *PAPER_METHODS):
        gm = df[df.method.map(titles) == method] if len(df) else df
        row: dict[str, Any] = {"dataset": "average", "method": method, "seeds": "—"}
        for metric, short in (("image_auroc", "I"), ("pixel_auroc", "P")):
            paper = _paper(ref, "average", method, metric)
            row[f"{short} here"] = domain_average(gm, ref, metric) if len(gm) else "not run"
            row[f"{short} paper"] = f"{paper:.1f}" if paper is not None else "—"
            row[f"Δ {short}"] = "—"
        row["AUPRO here"] = "—"
        row["reported in"] = _source(ref, "average", method)
        rows.append(row)
    return pd.DataFrame(rows)


def here_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Every method's mean over the datasets of ``df`` that it ran (%), side by side: the
    quick look at a profile's results (the synthetic sets have no paper numbers)."""
    if not len(df):
        return pd.DataFrame(columns=["method", "datasets", "image AUROC", "pixel AUROC",
                                     "AUPRO"])
    per = df.groupby(["method", "dataset_id"])[["image_auroc", "pixel_auroc", "aupro"]].mean()
    out = per.groupby(level=0).agg(["mean"]).droplevel(1, axis=1)
    out["datasets"] = per.groupby(level=0).size()
    out = out.reset_index()
    out["method"] = out.method.map(method_title)
    out = out.rename(columns={"image_auroc": "image AUROC", "pixel_auroc": "pixel AUROC",
                              "aupro": "AUPRO"})
    return out[["method", "datasets", "image AUROC", "pixel AUROC", "AUPRO"]]
