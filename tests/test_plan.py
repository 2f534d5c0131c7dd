"""The plan of a reproduction: every step known before anything runs, in an order that
respects what each needs; its estimates, its schedule on N GPUs, and `--plan`."""

from __future__ import annotations

import pytest
import yaml

from multiad.pipeline.plan import Plan, Step, build_plan
from multiad.pipeline.plan_costs import Rates, paper_scale, schedule
from multiad.pipeline.profiles import load_profile
from multiad.pipeline.reproduce import main


def test_the_paper_profile_is_planned_whole_before_anything_runs(tmp_path):
    prof = load_profile("paper")
    plan = build_plan(prof, tmp_path)
    seen: set[str] = set()
    for step in plan:  # every step after the steps it needs
        assert set(step.needs) <= seen, step.id
        seen.add(step.id)
    assert len(seen) == len(plan.steps) and not any(s.done for s in plan)
    runs = [t for s in plan if s.kind == "train" for t in s.runs]
    assert len({t.dir for t in runs}) == len(runs)  # each run trained once
    jobs = len(prof.jobs)
    assert len([t for t in runs if "/methods/" in str(t.dir)]) == jobs * len(prof.baselines)
    assert all(len(s.runs) <= prof.concurrent and len({t.job.id for t in s.runs}) == 1
               for s in plan if s.kind == "train")  # groups of one dataset
    prepare = [s for s in plan if s.kind == "prepare"]
    # MHKD's distilled PDN-M (from WRN-101-2) and EfficientAD's PDN-S: once each, first
    assert sorted(s.id.split("-")[1] for s in prepare) == ["medium", "small"]
    assert plan.steps[:len(prepare)] == prepare
    needing = {t.cfg.method for s in plan if s.kind == "train" and s.needs for t in s.runs}
    assert {"mhkd", "efficientad"} <= needing
    for s in plan:
        if s.kind == "train" and {"mhkd", "efficientad"} & {t.cfg.method for t in s.runs}:
            assert s.needs, s.id
    evaluations = [s for s in plan if s.kind == "evaluate"]
    assert all(s.needs for s in evaluations)  # nothing is trained yet
    main_cells = [s for s in evaluations if s.setting == "study1"]
    assert all(any(n.startswith("evaluate/runs/") for n in s.needs) for s in main_cells)


def test_efficientad_m_and_mhkd_with_the_same_settings_share_one_distillation(tmp_path):
    plan = build_plan(load_profile("smoke"), tmp_path, pages=["synthetic-texture"])
    prepare = [s for s in plan if s.kind == "prepare"]
    assert len(prepare) == 1  # the smoke profile's EfficientAD-M is MHKD's PDN
    distilled = [s for s in plan if s.kind == "train"
                 and {"mhkd", "efficientad"} & {t.cfg.method for t in s.runs}]
    # the two longest runs in separate groups, both after the one distillation
    assert len(distilled) == 2 and all(s.needs == (prepare[0].id,) for s in distilled)


def _chain_plan(tmp_path) -> Plan:
    prof = load_profile("smoke")
    plan = Plan(prof, tmp_path, tmp_path, None)
    plan.steps = [Step("a", "train", "p"), Step("b", "train", "p", needs=("a",)),
                  Step("c", "train", "p"), Step("d", "evaluate", "p", needs=("b",))]
    return plan


def test_the_schedule_on_n_gpus_and_its_critical_path(tmp_path):
    plan = _chain_plan(tmp_path)
    seconds = {"a": 10.0, "b": 10.0, "c": 15.0, "d": 4.0}
    # one GPU: a (longest remaining chain first), then c (15 s left) before b (14 s), d
    assert schedule(plan, seconds, 1) == (39.0, ["a", "b", "d"])
    wall, path = schedule(plan, seconds, 2)
    assert wall == 24.0 and path == ["a", "b", "d"]  # more GPUs: the chain's length
    assert plan.dependents("a") == [plan["b"], plan["d"]]


def test_paper_scale_costs_every_method_and_names_what_it_lacks(tmp_path):
    rates = Rates(train={("multiad", 256): 400.0, ("padim", 256): 100.0},
                  evaluate={("multiad", 256): 1000.0}, teacher=3000.0, source="test")
    prof = load_profile("paper")
    t = paper_scale(prof, rates, (1, 8))
    students = {t.dir for s in build_plan(prof, tmp_path) if s.kind == "train"
                for t in s.runs if t.cfg.method == "multiad"}
    # the main runs and Table 4's and the extended ablation's students
    assert t["methods"]["multiad"]["trainings"] == len(students) > len(prof.jobs)
    # 23 training images per second of MVTec bottle's 209 at 250 epochs, and the rest
    bottle = 209 * 250 / 400.0 / 3600
    assert t["methods"]["multiad"]["train_h"] > 23 * bottle
    assert t["methods"]["multiad"]["train_h"] > 0 and t["methods"]["mhkd"]["train_h"] == 0
    assert "mhkd" in t["missing_rates"] and "multiad" not in t["missing_rates"]
    assert t["wall_h"][8] <= t["wall_h"][1]
    assert t["critical_h"] <= t["wall_h"][8] + 1e-9


def test_plan_option_prints_the_steps_and_runs_nothing(tmp_path, capsys):
    assert main(["--profile", "smoke", "--results", str(tmp_path), "--only",
                 "synthetic-texture", "--plan"]) == 0
    out = capsys.readouterr().out
    assert "todo  train/synthetic-texture/0" in out and "after prepare/pdn-medium" in out
    assert "16 steps: 0 finished, 16 to run" in out
    assert not (tmp_path / "smoke").exists()


def test_a_profiles_ray_block_is_checked(tmp_path):
    base = yaml.safe_load((load_profile.__globals__["PROFILE_DIR"] / "smoke.yaml").read_text())
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump({**base, "ray": {"train": {"num_gpus": 0.5,
                                                              "memory_gib": 12}}}))
    assert load_profile(str(good)).ray == {"train": {"num_gpus": 0.5, "memory_gib": 12}}
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**base, "ray": {"train": {"gpus": 1}}}))
    with pytest.raises(ValueError, match=r"bad.yaml: ray.train: .*num_gpus"):
        load_profile(str(bad))


def test_a_run_on_device_auto_asks_ray_for_a_gpu_where_the_cluster_has_one(tmp_path):
    """Ray hides the GPUs from a task that did not ask for one: the paper profile's runs
    (device auto) must ask on a GPU cluster, and ask for none on CPUs."""
    from multiad.pipeline.run_plan import step_resources

    plan = build_plan(load_profile("paper"), tmp_path)
    train = next(s for s in plan if s.kind == "train")
    evaluate = next(s for s in plan if s.kind == "evaluate")
    assert train.runs[0].cfg.train.device == "auto"
    assert step_resources(plan, train, 64, 8) == {"num_gpus": 1, "num_cpus": 4}
    assert step_resources(plan, evaluate, 64, 8) == {"num_gpus": 0.25, "num_cpus": 2}
    assert step_resources(plan, train, 2, 0) == {"num_cpus": 2}
    assert step_resources(plan, train, 1, 0) == {"num_cpus": 1}  # at most a node's CPUs
