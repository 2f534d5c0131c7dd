"""make reproduce: profiles, papermill notebooks, incremental and failure-tolerant runs."""

from __future__ import annotations

import json

import nbformat
import pytest
import yaml

from multiad.reproduce import GROUPS, load_profile, preflight, reproduce
from multiad.results import collect, comparison


def _profile(tmp_path, groups, name="tiny"):
    d = {"name": name, "description": "test profile", "paper_numbers": False,
         "config": {"data.image_size": 32, "model.teacher_weights": "random",
                    "train.epochs": 1, "train.batch_size": 8, "train.device": "cpu"},
         "synthetic": {"size": 48, "n_train": 8, "n_test_good": 4, "n_test_per_defect": 2},
         "seeds": [0], "groups": groups}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(d))
    return path


def _errors(nb_path):
    nb = nbformat.read(str(nb_path), as_version=4)
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if o.get("output_type") == "error"]


@pytest.mark.parametrize("name", ["smoke", "demo", "paper"])
def test_shipped_profiles_load(name):
    prof = load_profile(name)
    assert set(prof.groups) == set(GROUPS) and prof.seeds
    if name == "paper":
        assert prof.paper_numbers and len(prof.groups["industrial"]) == 15
        assert [j.kind for j in prof.groups["medical"]] == ["brain", "liver", "retina"]
        assert prof.config["train.epochs"] == 250


def test_unknown_profile_lists_known_ones():
    with pytest.raises(ValueError, match="known profiles: demo, paper, smoke"):
        load_profile("nope")


def test_paper_profile_refuses_to_start_without_data(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    import torch.hub

    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    problems = preflight(load_profile("paper"))
    assert any("wide_resnet50_2-95faca4d.pth" in p for p in problems)
    assert any("mvtec-bottle" in p and "check-data" in p for p in problems)
    assert reproduce("paper", tmp_path / "results", executed_dir=tmp_path / "ex") > 0
    assert not (tmp_path / "ex").exists()


def test_reproduce_runs_notebooks_incrementally_and_survives_a_failure(tmp_path):
    root = str(tmp_path / "synthetic")
    good = _profile(tmp_path, {
        "industrial": [{"id": "tex", "kind": "synthetic", "category": "texture", "root": root}],
        "medical": [{"id": "med", "kind": "synthetic", "category": "medical", "root": root}]})
    ex, res = tmp_path / "executed", tmp_path / "results"
    assert reproduce(str(good), res, executed_dir=ex) == 0
    for page in ("industrial", "medical", "tables"):
        assert (ex / f"{page}.ipynb").exists() and not _errors(ex / f"{page}.ipynb")
    tables = (ex / "tables.ipynb").read_text()
    assert "Not the paper" in tables and "not run" in tables
    df = collect(res / "tiny")
    assert sorted(df.dataset_id) == ["med", "tex"] and df.image_auroc.between(0, 100).all()
    model = res / "tiny" / "runs" / "tex" / "seed0" / "model.pt"
    stamp = model.stat().st_mtime_ns
    before = (ex / "medical.ipynb").read_bytes()

    broken = _profile(tmp_path, {
        "industrial": [{"id": "tex", "kind": "synthetic", "category": "texture", "root": root}],
        "medical": [{"id": "med", "kind": "folder", "category": None,
                     "root": str(tmp_path / "missing")}]})
    assert reproduce(str(broken), res, executed_dir=ex) == 1
    assert model.stat().st_mtime_ns == stamp  # finished run not redone
    assert (ex / "medical.ipynb").read_bytes() == before  # last good page kept
    assert (res / "tiny" / "failed" / "medical.ipynb").exists()
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
