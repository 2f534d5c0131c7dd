"""make reproduce: profiles, papermill notebooks, incremental and failure-tolerant runs."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
import yaml

from multiad.pipeline.profiles import DATASET_PAGES, load_profile
from multiad.pipeline.reproduce import notebooks_of, reproduce
from multiad.pipeline.results import collect, comparison
from multiad.pipeline.runs import preflight


def _profile(tmp_path, tex, med, name="tiny", ablations=None, baselines=None):
    d = {"name": name, "description": "test profile", "paper_numbers": False,
         "baselines": baselines or [],
         "config": {"data.image_size": 32, "teacher.weights": "random",
                    "train.epochs": 1, "train.batch_size": 8, "train.device": "cpu"},
         "synthetic": {"size": 48, "n_train": 8, "n_test_good": 4, "n_test_per_defect": 2},
         "seeds": [0],
         "datasets": {"synthetic-texture": {"domain": "industrial", "jobs": [tex]},
                      "synthetic-medical": {"domain": "medical", "jobs": [med]}},
         "ablations": ablations or {},
         "walkthrough": {"image_size": 64, "n_train": 8, "steps": 2, "batch_size": 4}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(d))
    return path


def _errors(nb_path):
    nb = nbformat.read(str(nb_path), as_version=4)
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if o.get("output_type") == "error"]


@pytest.mark.parametrize("name", ["smoke", "demo", "gpu-smoke", "paper"])
def test_shipped_profiles_load(name):
    prof = load_profile(name)
    assert set(prof.datasets) <= set(DATASET_PAGES) and prof.seeds
    assert {"table4", "extended"} == set(prof.ablations)
    # every column of Tables 2–3 is re-run: each of the package's methods besides Multi-AD
    # (the demo leaves EfficientAD to METHODS=efficientad: its ~2 min are not paid for yet)
    from multiad.methods import METHODS

    own = {n for n, m in METHODS.items() if type(m).__module__.startswith("multiad.methods.")}
    missing = own - {"multiad"} - set(prof.baselines)
    assert missing == ({"efficientad"} if name == "demo" else set())
    assert set(prof.baselines) <= set(METHODS)
    pages = [nb.page for nb in notebooks_of(prof)]
    # the result pages after the trainings, then the teaching page (its own short run)
    assert pages[-4:] == ["tables", "figures", "explorer", "walkthrough"]
    if name == "paper":
        assert list(prof.datasets) == ["mvtec", "brain", "liver", "retina", "mvtec-loco"]
        assert prof.paper_numbers and len(prof.datasets["mvtec"].jobs) == 15
        assert {prof.domain_of(j) for j in ("brain", "liver", "retina")} == {"medical"}
        from multiad.data.mvtec_loco import LOCO_CATEGORIES

        loco = prof.datasets["mvtec-loco"]
        assert loco.domain == "loco" and sorted(j.category for j in loco.jobs) == sorted(
            LOCO_CATEGORIES) and {j.kind for j in loco.jobs} == {"mvtec_loco"}
        assert len(prof.ablations["table4"].datasets) == 18
        assert len(prof.ablations["table4"].settings) == 8
        # each method its own reference schedule and teacher: Multi-AD 250 epochs, …
        assert "train.epochs" not in prof.config and "teacher.backbone" not in prof.config
        cfgs = {m: prof.run_config(prof.jobs["brain"], 0, None, {"method": m})
                for m in prof.methods}
        assert cfgs["multiad"].train.epochs == 250 and cfgs["stfpm"].train.epochs == 100
        assert cfgs["stfpm"].teacher.backbone == "resnet18"
        # the measured fast path: whole-step CUDA graphs, compiled, 4 runs at once
        assert prof.config["train.cuda_graph"] and prof.config["train.compile"]
        assert prof.concurrent == 4
    else:  # the embedded sets, LOCO's logical/structural split included
        assert prof.datasets["synthetic-loco"].domain == "loco"
        assert prof.datasets["synthetic-loco"].jobs[0].category == "loco"


def test_profile_errors_name_the_file_and_the_fix(tmp_path):
    job = {"id": "tex", "kind": "synthetic", "category": "texture", "root": "x"}
    bad = _profile(tmp_path, job, {**job, "id": "med"}, ablations={
        "table4": {"datasets": ["nope"]}})
    with pytest.raises(ValueError, match=r"tiny.yaml: ablation 'table4' names unknown jobs"):
        load_profile(str(bad))
    bad = _profile(tmp_path, job, {**job, "id": "med"}, ablations={
        "extended": {"datasets": ["tex"], "settings": ["sigma-3"]}})
    with pytest.raises(ValueError, match="unknown settings.*known: full"):
        load_profile(str(bad))
    bad = _profile(tmp_path, job, job)
    with pytest.raises(ValueError, match="job ids must be unique"):
        load_profile(str(bad))
    path = _profile(tmp_path, job, {**job, "id": "med"})
    path.write_text(path.read_text() + "concurrent: 0\n")
    with pytest.raises(ValueError, match=r"tiny.yaml: concurrent must be a whole number ≥ 1"):
        load_profile(str(path))


def test_unknown_profile_lists_known_ones():
    with pytest.raises(ValueError, match="known profiles: demo, gpu-smoke, paper, smoke"):
        load_profile("nope")


def test_paper_profile_refuses_to_start_without_data(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    import torch.hub

    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    problems = preflight(load_profile("paper"))
    assert any("wide_resnet50_2-95faca4d.pth" in p for p in problems)
    assert any("resnet18-f37072fd.pth" in p for p in problems)  # STFPM's teacher too
    assert any("mvtec-bottle" in p and "check-data" in p for p in problems)
    assert any("loco-pushpins" in p for p in problems)  # MVTec LOCO AD (MHKD's Table I)
    assert reproduce("paper", tmp_path / "results", executed_dir=tmp_path / "ex") > 0
    assert not (tmp_path / "ex").exists()
    # --only checks the data of the pages it runs (and every teacher); an ablation page's
    # are its datasets'
    paper = load_profile("paper")
    only = preflight(paper, ["brain"])
    assert any("brain" in p for p in only) and not any("mvtec-" in p or "loco-" in p
                                                      for p in only)
    assert any("wide_resnet50_2-95faca4d.pth" in p for p in only)
    ablation = preflight(paper, ["ablation-extended"])
    assert any("mvtec-carpet" in p for p in ablation) and any("retina" in p for p in ablation)
    assert not any("mvtec-tile" in p or "loco-" in p for p in ablation)
    # MVTec LOCO AD, beyond the paper's tables, is left out when missing, unless named
    from multiad.pipeline.reproduce import optional_pages_without_data

    assert optional_pages_without_data(paper, notebooks_of(paper), None) == (["mvtec-loco"], [])
    assert optional_pages_without_data(paper, notebooks_of(paper), ["mvtec-loco", "tables"]) == (
        [], [])


def test_reproduce_runs_notebooks_incrementally_and_survives_a_failure(tmp_path):
    root = str(tmp_path / "synthetic")
    tex = {"id": "tex", "kind": "synthetic", "category": "texture", "root": root}
    good = _profile(tmp_path, tex,
                    {"id": "med", "kind": "synthetic", "category": "medical", "root": root},
                    ablations={"table4": {"datasets": ["tex"], "settings": ["study1", "study2"]}},
                    baselines=["padim", "stfpm"])
    ex, res = tmp_path / "executed", tmp_path / "results"
    assert reproduce(str(good), res, executed_dir=ex) == 0
    for page in ("synthetic-texture", "synthetic-medical", "ablation-table4", "tables",
                 "figures", "walkthrough"):
        assert (ex / f"{page}.ipynb").exists() and not _errors(ex / f"{page}.ipynb")
    tables = (ex / "tables.ipynb").read_text()
    assert "Not the paper" in tables and "not run" in tables
    df = collect(res / "tiny")
    assert sorted(df.dataset_id) == ["med", "tex"] and df.image_auroc.between(0, 100).all()
    everything = collect(res / "tiny", baselines=True)
    assert sorted(zip(everything.method, everything.dataset_id, strict=True)) == [
        (m, d) for m in ("multiad", "padim", "stfpm") for d in ("med", "tex")]
    assert (res / "tiny" / "methods" / "stfpm" / "tex" / "seed0" / "metrics.json").exists()
    assert "PaDiM" in tables and "STFPM" in tables and "SimpleNet" in tables
    model = res / "tiny" / "runs" / "tex" / "seed0" / "model.pt"
    stamp = model.stat().st_mtime_ns
    before = (ex / "synthetic-medical.ipynb").read_bytes()
    assert "Figure 8" in (ex / "figures.ipynb").read_text()
    assert "99.6" in (ex / "ablation-table4.ipynb").read_text()  # the paper's Table 4 row 1

    broken = _profile(tmp_path, tex, {"id": "med", "kind": "folder", "category": None,
                                      "root": str(tmp_path / "missing")})
    # "med" names another dataset now: its finished folder is not trained over; its
    # evaluation step fails saying so (recorded), and its page is kept aside
    assert reproduce(str(broken), res, executed_dir=ex,
                     only=["synthetic-texture", "synthetic-medical", "tables"]) == 2
    record = json.loads((res / "tiny" / "failed" / "evaluate--runs--med--seed0.json")
                        .read_text())
    assert "another configuration" in record["error"] and "Traceback" in record["traceback"]
    assert model.stat().st_mtime_ns == stamp  # finished run not redone
    assert (ex / "synthetic-medical.ipynb").read_bytes() == before  # last good page kept
    assert (res / "tiny" / "failed" / "synthetic-medical.ipynb").exists()
    assert not _errors(ex / "tables.ipynb")


def test_comparison_puts_paper_numbers_next_to_ours(tmp_path):
    run = tmp_path / "runs" / "mvtec-bottle" / "seed0"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps({
        "config": {"data": {"kind": "mvtec", "category": "bottle", "image_size": 256}},
        "seed": 0, "teacher": {"kind": "imagenet"}, "epochs_trained": 250,
        "train_provenance": {"commit": "abc", "device": {"name": "GPU"}},
        "train_wall_s": 60.0,
        "metrics": {"image_auroc": 0.99, "pixel_auroc": 0.97, "aupro": 0.9,
                    "image_f1_max": 0.95}}))
    table = comparison(collect(tmp_path), "industrial").set_index("dataset")
    assert table.loc["bottle", "ours I"] == "99.0" and table.loc["bottle", "paper I"] == "100.0"
    assert table.loc["bottle", "Δ I"] == "-1.0" and table.loc["bottle", "Δ P"] == "-2.1"
    assert table.loc["carpet", "ours I"] == "not run"
    assert table.loc["average", "ours I"] == "needs all datasets"


def test_rerun_table_puts_each_method_next_to_its_reported_numbers(tmp_path):
    from multiad.pipeline.comparison import rerun_table

    for method, folder, image in (("multiad", "runs/mvtec-bottle", 0.99),
                                  ("padim", "methods/padim/mvtec-bottle", 0.97)):
        run = tmp_path / folder / "seed0"
        run.mkdir(parents=True)
        (run / "metrics.json").write_text(json.dumps({
            "config": {"method": method, "data": {"kind": "mvtec", "category": "bottle",
                                                  "image_size": 256}},
            "seed": 0, "teacher": {"kind": "imagenet"}, "epochs_trained": 0,
            "train_provenance": {"commit": "abc", "device": {"name": "CPU"}},
            "train_wall_s": 6.0,
            "metrics": {"image_auroc": image, "pixel_auroc": 0.96, "aupro": 0.9,
                        "image_f1_max": 0.95}}))
    t = rerun_table(collect(tmp_path, baselines=True), "industrial")
    bottle = t[t.dataset == "bottle"].set_index("method")
    assert bottle.loc["PaDiM", "I here"] == "97.0"
    paper = bottle.loc["PaDiM", "I paper"]
    assert bottle.loc["PaDiM", "Δ I"] == f"{97.0 - float(paper):+.1f}"
    assert bottle.loc["SimpleNet", "I here"] == "not run"  # reported only
    assert set(t[t.dataset == "average"].method) == {"Multi-AD", "PaDiM", "PatchCore",
                                                     "SimpleNet", "STFPM", "RD4AD", "MKD"}


def test_notebook_parameters_override_the_profile():
    prof = load_profile("paper")
    mine = prof.with_params(data_root="/data", epochs=5, seeds=[1, 2])
    assert mine.jobs["mvtec-bottle"].root == "/data/mvtec"
    assert mine.jobs["brain"].root == "/data/BMAD/Brain_AD"
    assert mine.config["train.epochs"] == 5 and mine.seeds == [1, 2]
    assert prof.jobs["brain"].root == "data/BMAD/Brain_AD" and prof.seeds == [0]  # a copy
    assert prof.with_params(concurrent=2).concurrent == 2 and prof.concurrent == 4
    with pytest.raises(ValueError, match="notebook parameter: concurrent must be"):
        prof.with_params(concurrent=-1)
    assert load_profile("smoke").with_params(data_root="/x").jobs[
        "synthetic-texture"].root == "data/synthetic-smoke"  # synthetic data stays


def test_a_longer_run_resumes_the_finished_one(tmp_path):
    from multiad.pipeline.runs import run_job

    root = str(tmp_path / "synthetic")
    tex = {"id": "tex", "kind": "synthetic", "category": "texture", "root": root}
    prof = load_profile(str(_profile(tmp_path, tex, {**tex, "id": "med"})))
    prof.config["train.keep_checkpoint"] = True  # what lets a finished run be extended
    first = run_job(prof, prof.jobs["tex"], 0, tmp_path / "res", progress=False)
    longer = run_job(prof.with_params(epochs=2), prof.jobs["tex"], 0, tmp_path / "res",
                     progress=False)
    assert first["epochs_trained"] == 1 and longer["epochs_trained"] == 2
    losses = (tmp_path / "res" / "runs" / "tex" / "seed0" / "losses.csv").read_text()
    assert len(losses.strip().splitlines()) == 3  # header + epochs 1 and 2


def test_per_method_settings_reach_that_methods_runs_only(tmp_path):
    """A profile's ``per_method`` overrides apply to that method's runs, after its common
    config; an unknown method there is refused by name."""
    import yaml

    from multiad.pipeline.profiles import load_profile

    base = yaml.safe_load((Path(__file__).resolve().parent.parent / "multiad" / "profiles"
                           / "smoke.yaml").read_text())
    prof = load_profile("smoke")
    job = prof.jobs["synthetic-texture"]
    assert prof.run_config(job, 0, None, {"method": "efficientad"}).train.batch_size == 1
    assert prof.run_config(job, 0, None, {"method": "padim"}).train.batch_size == 8
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**base, "per_method": {"nope": {"train.epochs": 1}}}))
    with pytest.raises(ValueError, match=r"per_method: methods \['nope'\] unknown"):
        load_profile(str(bad))
