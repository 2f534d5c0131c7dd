"""The plan run as Ray tasks: the same results as the serial path, a killed worker retried
and resumed, and a two-node cluster on loopback (each test starts and stops its own Ray)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
import yaml

from multiad.pipeline.plan import build_plan
from multiad.pipeline.profiles import load_profile
from multiad.pipeline.run_plan import run_plan
from multiad.pipeline.runs import run_job
from multiad.torch_files import load_torch

ray = pytest.importorskip("ray")
REPO = Path(__file__).resolve().parents[1]


def _tiny(tmp_path: Path, **extra) -> Path:
    d = {"name": "tiny", "description": "test profile", "paper_numbers": False,
         "config": {"data.image_size": 32, "teacher.backbone": "efficientnet_lite0",
                    "teacher.weights": "imagenet", "train.epochs": 1, "train.batch_size": 4,
                    "train.device": "cpu",
                    "data.cache_dir": str(tmp_path / "cache")},
         "synthetic": {"size": 48, "n_train": 8, "n_test_good": 4, "n_test_per_defect": 2},
         "seeds": [0],
         "datasets": {"synthetic-texture": {"domain": "industrial", "jobs": [
             {"id": "tex", "kind": "synthetic", "category": "texture",
              "root": str(tmp_path / "synthetic")}]}}, **extra}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(d))
    return path


def _metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())["metrics"]


def test_smoke_page_through_ray_equals_the_serial_path(tmp_path):
    """The smoke profile's texture page (every method, MHKD's and EfficientAD's distilled
    teacher first) as Ray tasks on a local instance gives the metrics of the serial path:
    each run trained and evaluated alone in this process."""
    prof = load_profile("smoke")
    plan = build_plan(prof, tmp_path / "ray", pages=["synthetic-texture"], workdir=REPO)
    assert [s.kind for s in plan.steps][:1] == ["prepare"]
    results = run_plan(plan)
    assert not ray.is_initialized()  # the local instance was stopped
    assert len(results) == len(plan.steps) and all(r["ok"] for r in results), results
    assert {r["pid"] for r in results} - {os.getpid()}  # ran in Ray's workers
    assert not build_plan(prof, tmp_path / "ray", pages=["synthetic-texture"]).todo
    job = prof.jobs["synthetic-texture"]
    cwd = os.getcwd()
    os.chdir(REPO)  # the profile's data folder is the repository's
    try:
        for method in prof.methods:
            serial = run_job(prof, job, 0, tmp_path / "serial", progress=False,
                             method=method)["metrics"]
            run = plan.results / ("runs" if method == prof.method else f"methods/{method}")
            assert _metrics(run / job.id / "seed0") == serial, method
    finally:
        os.chdir(cwd)


def _kill_when_checkpointed(run: Path, killed: list[int]) -> None:
    """Kill (SIGKILL) the process training ``run`` once its first checkpoint is written."""
    deadline = time.time() + 300
    while time.time() < deadline:
        if (run / "checkpoint.pt").exists():
            holder = json.loads((run / ".multiad-run.lock").read_text() or "{}")
            if holder.get("pid"):
                os.kill(holder["pid"], signal.SIGKILL)
                killed.append(holder["pid"])
                return
        time.sleep(0.02)


def test_a_killed_worker_is_retried_and_its_run_resumes_to_the_same_result(tmp_path):
    prof = load_profile(str(_tiny(tmp_path, config={
        "data.image_size": 32, "teacher.backbone": "efficientnet_lite0",
        "teacher.weights": "imagenet", "train.epochs": 4,
        "train.batch_size": 4, "train.device": "cpu", "train.checkpoint_every": 1,
        "data.cache_dir": str(tmp_path / "cache")})))
    plan = build_plan(prof, tmp_path / "ray", workdir=tmp_path)
    run = plan.results / "runs" / "tex" / "seed0"
    killed: list[int] = []
    watcher = threading.Thread(target=_kill_when_checkpointed, args=(run, killed))
    watcher.start()
    results = run_plan(plan)
    watcher.join()
    assert killed, "the training finished before its first checkpoint could be seen"
    assert all(r["ok"] for r in results), results
    train = next(r for r in results if r["kind"] == "train")
    assert train["pid"] != killed[0]  # the retry ran in a new worker
    losses = (run / "losses.csv").read_text().strip().splitlines()
    assert len(losses) == 1 + 4  # header + every epoch once
    serial = tmp_path / "serial"
    run_job(prof, prof.jobs["tex"], 0, serial, progress=False)
    a = load_torch(run / "model.pt")
    b = load_torch(serial / "runs" / "tex" / "seed0" / "model.pt")
    weights = [k for k, v in a.items() if isinstance(v, dict) and v and all(
        isinstance(t, torch.Tensor) for t in v.values())]
    assert "student" in weights
    for part in weights:
        for k, v in a[part].items():
            assert torch.equal(v, b[part][k]), (part, k)
    assert _metrics(run) == _metrics(serial / "runs" / "tex" / "seed0")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_two_node_cluster_on_loopback_runs_tasks_on_both(tmp_path):
    """`ray start --head` and a second `ray start --address` on 127.0.0.1, one CPU each:
    the plan's two training steps run at once, one on each node."""
    cli = str(Path(sys.executable).parent / "ray")
    port = _free_port()
    env = {**os.environ, "RAY_DEDUP_LOGS": "0"}
    common = ["--num-cpus", "1", "--num-gpus", "0", "--disable-usage-stats", "--block"]
    nodes = [subprocess.Popen([cli, "start", "--head", "--node-ip-address", "127.0.0.1",
                               "--port", str(port), "--include-dashboard", "false", *common],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        address = f"127.0.0.1:{port}"
        time.sleep(8)
        nodes.append(subprocess.Popen([cli, "start", "--address", address,
                                       "--node-ip-address", "127.0.0.1", *common], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        prof = load_profile(str(_tiny(tmp_path, baselines=["stfpm"], concurrent=1)))
        plan = build_plan(prof, tmp_path / "results", workdir=tmp_path)
        assert [s.kind for s in plan.steps].count("train") == 2
        deadline = time.time() + 60
        ray.init(address=address)
        try:
            while len([n for n in ray.nodes() if n["Alive"]]) < 2:
                assert time.time() < deadline, "the second node did not join"
                time.sleep(1)
            results = run_plan(plan, address)
        finally:
            ray.shutdown()
        assert all(r["ok"] for r in results), results
        train_nodes = {r["node"] for r in results if r["kind"] == "train"}
        assert len(train_nodes) == 2  # one CPU each: the two trainings ran on both nodes
        assert (plan.results / "methods" / "stfpm" / "tex" / "seed0" / "metrics.json").exists()
    finally:
        for node in reversed(nodes):
            node.send_signal(signal.SIGTERM)
        for node in reversed(nodes):
            try:
                node.wait(timeout=30)
            except subprocess.TimeoutExpired:
                node.kill()
