"""Ablations: settings that act after training reuse a trained student; Table 4; figures."""

from __future__ import annotations

import copy
import dataclasses
import json

import numpy as np
import pytest
import yaml

from multiad.evaluate import evaluate
from multiad.pipeline.figures import defect_cases, draw, typical_and_best
from multiad.pipeline.plan import build_plan
from multiad.pipeline.profiles import Job, Setting, load_profile, table4_settings
from multiad.pipeline.results import collect_ablation, setting_table, table4
from multiad.pipeline.run_plan import run_plan
from multiad.pipeline.runs import ablation_dir, run_ablation, run_dir, trained_dir
from multiad.pipeline.steps import failure_file


def run_here(plan):
    """Every step of ``plan`` in this process, in its order (what each Ray task runs)."""
    return {r["id"]: r for r in run_plan(plan, "in-process")}


@pytest.fixture(scope="module")
def tiny_profile(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ablation")
    root = str(tmp / "synthetic")
    d = {"name": "tiny", "description": "test profile", "paper_numbers": False,
         "config": {"data.image_size": 32, "teacher.weights": "random",
                    "train.epochs": 1, "train.batch_size": 8, "train.device": "cpu",
                    "data.cache_dir": str(tmp / "cache")},
         "synthetic": {"size": 48, "n_train": 8, "n_test_good": 4, "n_test_per_defect": 2},
         "seeds": [0],
         "datasets": {"synthetic-texture": {"domain": "industrial", "jobs": [
             {"id": "tex", "kind": "synthetic", "category": "texture", "root": root}]}},
         "ablations": {"table4": {"datasets": ["tex"],
                                  "settings": ["study1", "study2", "study3", "study4"]},
                       "extended": {"datasets": ["tex"],
                                    "settings": ["full", "sigma-8", "raw-product"]}}}
    path = tmp / "tiny.yaml"
    path.write_text(yaml.safe_dump(d))
    return load_profile(str(path)), tmp / "results"


@pytest.fixture(scope="module")
def table4_done(tiny_profile):
    prof, res = tiny_profile
    ab, job = prof.ablations["table4"], prof.jobs["tex"]
    return {s.id: run_ablation(prof, ab, s, job, 0, res, progress=False) for s in ab.settings}


def test_table4_settings_follow_the_paper():
    settings = table4_settings()
    assert [s.study for s in settings] == list(range(1, 9))
    assert settings[0].set == {"multiad.se": True, "multiad.discriminator": True,
                               "multiad.mff": True}
    assert settings[-1].label == "none"
    assert Setting("x", "x", {"multiad.sigma": 2.0, "multiad.se": False}).split() == (
        {"se": False}, {"sigma": 2.0})


def test_mff_rows_share_one_training(tiny_profile, table4_done):
    prof, res = tiny_profile
    job = prof.jobs["tex"]
    main = run_dir(res, job, 0)
    no_d = trained_dir(res, {"discriminator": False}, job, 0)
    # study 1 is the main run; 2 re-evaluates it without Ψ; 3 and 4 share one D-less student
    assert table4_done["study1"]["same_as"] == str(main)
    assert table4_done["study2"]["trained_in"] == str(main)
    assert table4_done["study3"]["trained_in"] == table4_done["study4"]["trained_in"] == str(no_d)
    trained = sorted(p.parents[2].name for p in (res / "trained").glob("*/*/seed0/model.pt"))
    assert trained == ["discriminator=false"]
    assert table4_done["study2"]["config"]["multiad"]["mff"] is False
    assert table4_done["study4"]["config"]["multiad"]["discriminator"] is False
    assert not (ablation_dir(res, "table4", "study2", job, 0) / "model.pt").exists()


def test_students_trained_together_give_the_same_cells(tiny_profile, table4_done, tmp_path):
    """With a profile's `concurrent`, the plan trains a dataset's distinct students in one
    step (train_many), its main run and the students its ablation rows need together; the
    cells then only evaluate, with the numbers of the one-at-a-time run."""
    prof = dataclasses.replace(tiny_profile[0], concurrent=4)
    job = prof.jobs["tex"]
    plan = build_plan(prof, tmp_path, pages=["ablation-table4"])
    train = [s for s in plan.steps if s.kind == "train"]
    # studies 1–2 are the main run; 3–4 share one D-less student: one step of two runs
    assert [s.dirs for s in train] == [(run_dir(tmp_path, job, 0),
                                        trained_dir(tmp_path, {"discriminator": False}, job, 0))]
    assert train[0].runs[1].cfg.multiad.discriminator is False
    evaluations = {s.setting: s for s in plan.steps if s.ablation}
    assert evaluations["study1"].needs == (train[0].id, f"evaluate/runs/{job.id}/seed0")
    assert evaluations["study3"].needs == (train[0].id,)
    results = run_here(plan)
    assert all(r["ok"] for r in results.values()), results
    for t in train[0].runs:
        meta = json.loads((t.dir / "train.json").read_text())
        assert meta["trained_together_with"] == [str(o.dir) for o in train[0].runs
                                                 if o.dir != t.dir]
    for sid, done in table4_done.items():
        cell = json.loads((ablation_dir(tmp_path, "table4", sid, job, 0) / "metrics.json"
                           ).read_text())
        assert cell["metrics"] == done["metrics"], sid
    again = build_plan(prof, tmp_path, pages=["ablation-table4"])
    assert not again.todo  # everything finished: nothing planned to run


def test_a_run_failing_in_its_group_leaves_the_others_finished(tiny_profile, tmp_path):
    """One run of a training step fails: its error is recorded, the step's other run is
    trained and evaluated, and only the failed run's evaluation is skipped."""
    prof = copy.deepcopy(dataclasses.replace(tiny_profile[0], concurrent=2,
                                             baselines=["padim"], ablations={}))
    gone = Job("gone", "mvtec", str(tmp_path / "no-mvtec-here"), "bottle")
    prof.datasets["synthetic-texture"].jobs.append(gone)
    plan = build_plan(prof, tmp_path)
    results = run_here(plan)
    failed_group = next(r for sid, r in results.items() if sid.startswith("train/gone"))
    assert failed_group["ok"] is False and "no-mvtec-here" in failed_group["error"]
    assert failure_file(tmp_path, failed_group["id"]).exists()
    assert results["train/tex/0"]["ok"] and not results["train/tex/0"]["failed"]
    assert results["evaluate/runs/tex/seed0"]["ok"]
    assert results["evaluate/methods/padim/tex/seed0"]["ok"]
    skipped = results["evaluate/runs/gone/seed0"]
    assert not skipped["ok"] and "train/gone/0" in skipped["skipped"]


def test_rerun_of_ablation_is_a_no_op(tiny_profile, table4_done):
    prof, res = tiny_profile
    ab, job = prof.ablations["table4"], prof.jobs["tex"]
    metrics = ablation_dir(res, "table4", "study3", job, 0) / "metrics.json"
    stamp = metrics.stat().st_mtime_ns
    again = run_ablation(prof, ab, ab.settings[2], job, 0, res, progress=False)
    assert metrics.stat().st_mtime_ns == stamp and again["metrics"] == table4_done["study3"][
        "metrics"]


def test_reevaluating_with_the_trained_switches_gives_the_same_numbers(tiny_profile,
                                                                       table4_done, tmp_path):
    """Ψ calibrated from the recorded statistics equals the Ψ saved with the model."""
    prof, res = tiny_profile
    main = run_dir(res, prof.jobs["tex"], 0)
    again = evaluate(main, device="cpu", progress=False, out_dir=tmp_path / "again",
                     model_overrides={"sigma": 4.0, "mff": True}, save_maps=False)
    for k in ("image_auroc", "pixel_auroc", "aupro"):
        assert again["metrics"][k] == pytest.approx(table4_done["study1"]["metrics"][k],
                                                    abs=1e-6)


def test_eval_only_overrides_refuse_training_switches(tiny_profile, table4_done, tmp_path):
    prof, res = tiny_profile
    with pytest.raises(ValueError, match="change training"):
        evaluate(run_dir(res, prof.jobs["tex"], 0), device="cpu", progress=False,
                 out_dir=tmp_path / "x", model_overrides={"se": False})


def test_table4_and_extended_tables(tiny_profile, table4_done):
    prof, res = tiny_profile
    df = collect_ablation(res, "table4")
    assert sorted(df.setting) == ["study1", "study2", "study3", "study4"]
    t = table4(df, prof, "industrial").set_index("study")
    assert t.loc[1, "ours I"] == f"{table4_done['study1']['metrics']['image_auroc'] * 100:.1f}"
    assert t.loc[1, "paper I"] == "99.6" and t.loc[1, "datasets"] == 1
    assert t.loc[5, "ours I"] == "not run"
    med = table4(df, prof, "medical").set_index("study")
    assert med.loc[1, "ours I"] == "not run" and med.loc[1, "paper P"] == "97.0"
    ab = prof.ablations["extended"]
    for s in ab.settings:
        run_ablation(prof, ab, s, prof.jobs["tex"], 0, res, progress=False)
    ext = setting_table(collect_ablation(res, "extended"), ab.settings, "full")
    assert list(ext.setting) == ["full", "sigma-8", "raw-product"]
    assert ext.set_index("setting").loc["full", "Δ image"] == "—"
    product = json.loads((ablation_dir(res, "extended", "raw-product", prof.jobs["tex"], 0)
                          / "metrics.json").read_text())
    assert product["config"]["multiad"]["map_fusion"] == "product"


def test_figure_rules_and_panels(tiny_profile, table4_done, tmp_path):
    prof, res = tiny_profile
    main = run_dir(res, prof.jobs["tex"], 0)
    cases = typical_and_best(main)
    scores = sorted(float(r["score"]) for r in csv_rows(main) if r["label"] == "1")
    assert cases[0].score == scores[(len(scores) - 1) // 2] and cases[-1].score == scores[-1]
    fig8 = defect_cases([main])
    assert fig8["scratch"] is not None and "scratch" in fig8["scratch"].defect
    assert fig8["major"].gt_area >= fig8["minor"].gt_area
    png = draw(tmp_path / "f.png", cases, ["a", "b"][:len(cases)])
    from PIL import Image

    assert Image.open(png).size[0] > 200
    # the recomputed map is the evaluated one: its maximum is the image score (Eq. 15), up
    # to the float16 storage of the layer maps
    from multiad.pipeline.figures import RunMaps

    rm = RunMaps(main)
    assert float(rm.smoothed(cases[-1].index).max()) == pytest.approx(cases[-1].score, rel=2e-2)
    assert np.asarray(rm.panel(0)[0]).dtype == np.uint8


def csv_rows(run):
    import csv

    with (run / "per_image.csv").open() as fh:
        return list(csv.DictReader(fh))


def test_a_gpu_run_record_is_built_from_what_the_run_wrote(tiny_profile, table4_done, tmp_path):
    """benchmarks/record_gpu_run.py: the notebook outcomes from the log, every evaluated
    run's numbers and provenance from its own metrics.json in the packed results."""
    import importlib.util
    import json
    import tarfile
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "record_gpu_run.py"
    spec = importlib.util.spec_from_file_location("record_gpu_run", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    _, res = tiny_profile
    files = tmp_path / "files"
    files.mkdir()
    with tarfile.open(files / "results.tgz", "w:gz") as tar:  # as gpu_reproduce.sh packs it
        for p in res.rglob("metrics.json"):
            tar.add(p, arcname=str(p.relative_to(res.parent)))
    (files / "reproduce.log").write_text(
        "torch 2.11.0 NVIDIA H100 papermill 2.7.0\n"
        "profile tiny: 3 notebooks, 4 runs → /tmp/results/tiny\n"
        "[notebook 1/3 · 0/4 runs done · 0.0 min] ablation-table4: 4 runs\n"
        "  FAILED ablation-table4.ipynb: CellExecutionError: boom\n"
        "[notebook 2/3 · 4/4 runs done · 1.0 min, ETA 0 min] tables\n"
        "reproduce exit status 124 after 61 s\n")
    (files / "pytest.log").write_text("....\n9 passed in 80.00s (0:01:20)\n")
    assert mod.main([str(files), "--out", str(tmp_path / "rec"), "--note", "n"]) == 0
    rec = json.loads(next((tmp_path / "rec").glob("*.json")).read_text())
    assert rec["notebooks"] == {"ablation-table4": "failed: CellExecutionError: boom",
                                "tables": "stopped before it finished (time limit)",
                                "(not reached)": "1 notebook(s)"}
    assert rec["wall_s"] == 61 and rec["papermill"] == "2.7.0"
    assert rec["cuda_tests"] == "9 passed in 80.00s (0:01:20)"
    # the tests ran in `gpu_session.sh tests` instead (RUN_TESTS=0 here): its log counts
    (files / "pytest.log").rename(files / "pytest_cuda.log")
    assert mod.main([str(files), "--out", str(tmp_path / "rec2"), "--note", "n"]) == 0
    rec2 = json.loads(next((tmp_path / "rec2").glob("*.json")).read_text())
    assert rec2["cuda_tests"] == rec["cuda_tests"]
    written = {str(p.parent.relative_to(res)) for p in res.rglob("metrics.json")}
    by_cell = {r["cell"]: r for r in rec["runs"]}
    assert set(by_cell) == written and len(written) >= 5
    assert by_cell["runs/tex/seed0"]["trained_in"] is None
    study2 = by_cell["ablation/table4/study2/tex/seed0"]
    assert study2["trained_in"] == "runs/tex/seed0"
    assert 0 <= study2["image_auroc"] <= 1 and study2["eval_wall_s"] > 0
    assert rec["commit"] and rec["torch"] and rec["device"]
