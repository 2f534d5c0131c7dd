"""LOCO-layout results next to MHKD's Table I; the related systems' own numbers in Table 3."""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pytest
import yaml

from multiad.data.synthetic import make_synthetic
from multiad.pipeline.comparison import reference, rerun_table
from multiad.pipeline.loco_results import (
    LOCO_ORDER,
    auspro_per_defect,
    auspro_per_defect_wide,
    auspro_table,
    mhkd_table1,
    mhkd_table1_reported,
)
from multiad.pipeline.profiles import load_profile
from multiad.pipeline.results import collect, related_reference
from multiad.pipeline.runs import run_job


def test_transcribed_means_are_the_means_of_the_printed_rows() -> None:
    """The transcription checked against itself: every printed average of MHKD's Tables I
    and II is the mean of its row's categories (to the printed rounding)."""
    ref = related_reference()
    rows: dict = defaultdict(dict)
    for r in ref.itertuples():
        rows[(r.table, r.method, r.metric)][r.dataset] = r.value_percent
    checked = 0
    for key, v in rows.items():
        cats = [c for c in v if c != "average"]
        if "average" in v and len(cats) >= 5:
            assert sum(v[c] for c in cats) / len(cats) == pytest.approx(v["average"], abs=0.06), key
            checked += 1
    assert checked == 17  # 15 methods with every LOCO category, MHKD's two MVTec means
    assert set(ref[ref.table == "mhkd_table1"].dataset) == {*LOCO_ORDER, "average"}
    wide = mhkd_table1_reported()
    assert list(wide.columns) == ["method", *LOCO_ORDER, "average"] and len(wide) == 18
    assert wide.set_index("method").loc["SimpleNet", "pushpins"] == "—"


def test_related_systems_numbers_join_table_3_with_their_source() -> None:
    ref = reference("industrial")
    mhkd = ref[ref.method == "MHKD"]
    assert len(mhkd) == 32 and set(mhkd.table) == {"mhkd_table2"}
    assert not (ref[ref.method == "PaDiM"].table == "mhkd_table2").any()
    df = pd.DataFrame([{"dataset_id": "mvtec-bottle", "paper_dataset": "bottle",
                        "method": m, "seed": 0, "image_auroc": 97.0, "pixel_auroc": 95.0,
                        "aupro": 90.0} for m in ("multiad", "mhkd")])
    t = rerun_table(df, "industrial").set_index(["dataset", "method"])
    assert t.loc[("bottle", "MHKD"), "I paper"] == "100.0"
    assert t.loc[("bottle", "MHKD"), "Δ I"] == "-3.0"
    assert t.loc[("bottle", "MHKD"), "reported in"] == "MHKD Table II"
    assert t.loc[("bottle", "Multi-AD"), "reported in"] == "Multi-AD Table 3"
    # its own average (Table II's mean) with it; ours needs all fifteen categories
    assert t.loc[("average", "MHKD"), "I paper"] == "99.4"
    assert t.loc[("average", "MHKD"), "P paper"] == "98.5"
    assert t.loc[("average", "MHKD"), "I here"] == "needs all datasets"
    assert t.loc[("average", "MHKD"), "reported in"] == "MHKD Table II"


@pytest.fixture(scope="module")
def loco_results(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """PaDiM and PatchCore on the embedded LOCO set, and on a copy of it named as an MVTec
    LOCO AD category (so it is a Table I row), through the profile machinery."""
    tmp = tmp_path_factory.mktemp("loco")
    syn = make_synthetic("loco", tmp / "syn", size=48, n_train=8, n_test_good=3,
                         n_test_per_defect=2)
    shutil.copytree(syn, tmp / "mvtec_loco" / "pushpins")
    d = {"name": "tiny-loco", "description": "test", "paper_numbers": False,
         "baselines": ["padim", "patchcore"],
         "config": {"data.image_size": 32, "teacher.weights": "random", "train.epochs": 1,
                    "train.device": "cpu", "data.cache_dir": str(tmp / "cache")},
         "seeds": [0],
         "datasets": {
             "mvtec-loco": {"domain": "loco", "jobs": [
                 {"id": "loco-pushpins", "kind": "mvtec_loco", "category": "pushpins",
                  "root": str(tmp / "mvtec_loco")}]},
             "synthetic-loco": {"domain": "loco", "jobs": [
                 {"id": "synthetic-loco", "kind": "synthetic", "category": "loco",
                  "root": str(tmp / "syn")}]}}}
    path = tmp / "tiny-loco.yaml"
    path.write_text(yaml.safe_dump(d))
    prof = load_profile(str(path))
    out = tmp / "results"
    for method in prof.baselines:
        for job in prof.jobs.values():
            run_job(prof, job, 0, out, progress=False, method=method)
    return out, collect(out, baselines=True)


@pytest.mark.slow
def test_auspro_tables_read_each_runs_metrics(loco_results) -> None:
    out, df = loco_results
    assert len(df) == 4 and set(df.paper_dataset.dropna()) == {"pushpins"}
    t = auspro_table(df).set_index(["dataset_id", "method"])
    for r in df.itertuples():
        m = json.loads((Path(r.run) / "metrics.json").read_text())["metrics"]
        sp = m["auspro"]
        row = t.loc[(r.dataset_id, r.method)]
        assert row["AUsPRO logical"] == f"{100 * sp['per_group']['logical_anomalies']:.1f}"
        assert row["AUsPRO mean"] == f"{100 * sp['mean']:.1f}"
        logical, structural = (100 * m["per_defect"][t]["image_auroc"]
                               for t in ("logical_anomalies", "structural_anomalies"))
        assert row["image structural"] == f"{structural:.1f}"
        assert row["image AUROC"] == f"{(logical + structural) / 2:.1f}"  # as MVTec's script
        names = set(sp["per_defect"])
        assert names <= {"missing_disc", "swapped_colour", "extra_disc", "scratch", "dent"}
    per = auspro_per_defect(df).set_index(["dataset", "defect", "method"])
    for r in df.itertuples():
        sp = json.loads((Path(r.run) / "metrics.json").read_text())["metrics"]["auspro"]
        for name, v in sp["per_defect"].items():
            row = per.loc[(r.dataset_id, name, r.method)]
            assert row["images"] == v["images"] and row["with other defects"] == v["mixed"]
            assert row["AUsPRO"] == (f"{100 * v['auspro']:.1f}" if v["auspro"] is not None
                                     else "—")
    wide = auspro_per_defect_wide(df).set_index(["dataset", "defect"])
    assert list(wide.columns) == ["images", "with other defects", *dict.fromkeys(df.method)]
    for (dataset, defect, method), row in per.iterrows():
        assert wide.loc[(dataset, defect), method] == row["AUsPRO"]


@pytest.mark.slow
def test_mhkd_table1_puts_a_run_next_to_the_reported_row(loco_results) -> None:
    _, df = loco_results
    t = mhkd_table1(df).set_index(["category", "method"])
    run = df[(df.method == "padim") & (df.paper_dataset == "pushpins")].run.iloc[0]
    m = json.loads((Path(run) / "metrics.json").read_text())["metrics"]
    mean = 100 * m["auspro"]["mean"]
    image = 50 * sum(m["per_defect"][t]["image_auroc"]
                     for t in ("logical_anomalies", "structural_anomalies"))
    assert t.loc[("pushpins", "PaDiM"), "AUsPRO here"] == f"{mean:.1f}"
    assert t.loc[("pushpins", "PaDiM"), "image AUROC here"] == f"{image:.1f}"
    assert t.loc[("pushpins", "PaDiM"), "AUsPRO reported"] == "29.5"
    assert t.loc[("pushpins", "PaDiM"), "Δ"] == f"{mean - 29.5:+.1f}"
    # one category ran: no average here; methods that did not run keep their reported row
    assert t.loc[("average", "PaDiM"), "AUsPRO here"] == "not run"
    assert t.loc[("pushpins", "MHKD"), "AUsPRO here"] == "not run"
    assert t.loc[("average", "MHKD"), "image AUROC reported"] == "91.0"
    assert t.loc[("average", "SimpleNet"), "AUsPRO reported"] == "36.3"
    assert ("pushpins", "SimpleNet") not in t.index  # reported as an average only
    assert "VM" not in t.index.get_level_values("method")  # not a method of the package


def test_mhkd_table1_averages_five_defined_categories_only(tmp_path) -> None:
    """Written metrics (no training): the average here needs all five categories defined;
    an undefined AUsPRO is said, never averaged away."""
    rows = []
    for k, cat in enumerate(LOCO_ORDER):
        run = tmp_path / cat
        run.mkdir()
        mean = None if cat == "pushpins" else 0.5 + k / 100
        per_group = {"logical_anomalies": mean, "structural_anomalies": mean}
        per_defect = {t: {"image_auroc": 0.8} for t in per_group}
        (run / "metrics.json").write_text(json.dumps({"metrics": {
            "auspro": {"per_group": per_group, "mean": mean}, "per_defect": per_defect}}))
        rows.append({"run": str(run), "dataset_id": f"loco-{cat}", "paper_dataset": cat,
                     "method": "padim", "seed": 0, "image_auroc": 80.0})
    t = mhkd_table1(pd.DataFrame(rows)).set_index(["category", "method"])
    assert t.loc[("breakfast_box", "PaDiM"), "AUsPRO here"] == "50.0"
    assert t.loc[("pushpins", "PaDiM"), "AUsPRO here"] == "undefined"
    assert t.loc[("pushpins", "PaDiM"), "Δ"] == "—"
    assert t.loc[("average", "PaDiM"), "AUsPRO here"] == "undefined"
    assert t.loc[("average", "PaDiM"), "image AUROC here"] == "80.0"
    defined = [dict(r, run=str(tmp_path / "breakfast_box")) if r["paper_dataset"] == "pushpins"
               else r for r in rows]
    avg = mhkd_table1(pd.DataFrame(defined)).set_index(["category", "method"])
    expected = (50.0 + 51 + 50 + 53 + 54) / 5  # pushpins now reads breakfast_box's 50.0
    assert avg.loc[("average", "PaDiM"), "AUsPRO here"] == f"{expected:.1f}"
