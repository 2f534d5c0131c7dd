"""How long a plan takes: each step's seconds estimated from measured rates, the plan as
``--plan`` prints it, and the plan scheduled on N GPUs (the compute page's paper-scale
table).

Rates, per method: training images × epochs per second and test images per second, from
the finished runs of this machine's results folders (their ``train.json`` and
``metrics.json``), else from the newest per-method benchmark of this device
(``benchmarks/results/*_methods_*.json``). A training group's seconds are its runs' sums,
one run at a time (training several at once is faster on a GPU: an upper bound).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from multiad.pipeline.plan import Plan, Step
from multiad.pipeline.profiles import Job, Profile

REPO = Path(__file__).resolve().parents[2]
BENCHMARKS = REPO / "benchmarks" / "results"
# a PDN distillation step: one source forward at twice the input size (4× the pixels)
# and the small PDN's step, against the WRN-50-2 forward the benchmark measured;
# WRN-101-2 costs about 1.9× WRN-50-2 (22.8 against 11.4 GMAC at 224²)
DISTIL_COST = {"wide_resnet101_2": 4 * 1.9, "wide_resnet50_2": 4.0}


@dataclass
class Rates:
    """Measured rates per method: ``train`` (images × epochs per second; a fitted method's
    images per second), ``evaluate`` (test images per second), ``teacher`` (the WRN-50-2
    forward, images per second) and where they come from."""

    train: dict[tuple[str, int], float] = field(default_factory=dict)  # (method, size)
    evaluate: dict[tuple[str, int], float] = field(default_factory=dict)
    teacher: float | None = None
    source: str = "no measurement"


def device_name(device: str | None) -> str:
    """The name runs record for ``device`` (``train_provenance.device.name``)."""
    from multiad.provenance import device_info, select_device

    return str(device_info(select_device(device or "auto")).get("name", "cpu"))


def measured_rates(roots: Iterable[Path], name: str) -> Rates:
    """Rates of the finished runs under ``roots`` that ran on the device called ``name``
    (a run trained with others counts their images too: the group's rate)."""
    train: dict[tuple[str, int], list[float]] = {}
    evaluate: dict[tuple[str, int], list[float]] = {}
    for root in roots:
        for path in Path(root).glob("**/train.json"):
            try:
                t = json.loads(path.read_text())
                m = json.loads((path.parent / "metrics.json").read_text())
            except (OSError, ValueError):
                continue
            if t.get("provenance", {}).get("device", {}).get("name") != name:
                continue
            method = (t.get("method", "multiad"), t.get("config", {}).get("data", {}).get(
                "image_size", 256))
            group = 1 + len(t.get("trained_together_with") or [])
            work = t.get("images_trained", 0) * max(1, t.get("epochs") or 1) * group
            if t.get("train_wall_s"):
                train.setdefault(method, []).append(work / t["train_wall_s"])
            tests = m.get("data", {}).get("counts", {}).get("test", {}).get("total")
            if tests and m.get("eval_wall_s"):
                evaluate.setdefault(method, []).append(tests / m["eval_wall_s"])
    median = {k: sorted(v)[len(v) // 2] for k, v in train.items()}
    return Rates(median, {k: sorted(v)[len(v) // 2] for k, v in evaluate.items()},
                 source=f"finished runs on {name}" if median else "no measurement")


def benchmark_rates(name: str, folder: Path = BENCHMARKS) -> Rates:
    """Rates of the newest per-method benchmark (``bench_methods.py``) on ``name``."""
    files = []
    for p in sorted(folder.glob("*_methods_*.json")):
        r = json.loads(p.read_text())
        if r.get("device") == name and r.get("profile") != "small":
            files.append((p.name, r))
    if not files:
        return Rates()
    file, r = files[-1]
    rates = Rates(source=f"benchmarks/results/{file}")
    for method, v in r["methods"].items():
        if "error" in v:
            continue
        key = (method, r.get("image_size", 256))
        rates.train[key] = v["fit_img_per_s"] if v.get("kind") == "fitted" \
            else v["train_img_per_s"]
        rates.evaluate[key] = v["infer_img_per_s"]
    rates.teacher = r["methods"].get("multiad", {}).get("teacher_img_per_s")
    return rates


def rates_for(plan: Plan) -> Rates:
    """This device's rates: finished runs first, the benchmark for what they lack."""
    name = device_name(plan.device or next(
        (s.runs[0].cfg.train.device for s in plan.steps if s.runs), "auto"))
    runs = measured_rates(dict.fromkeys([plan.results.parent, REPO / "results"]), name)
    bench = benchmark_rates(name)
    both = Rates({**bench.train, **runs.train}, {**bench.evaluate, **runs.evaluate},
                 bench.teacher, " and ".join(s.source for s in (runs, bench)
                                             if s.source != "no measurement") or
                 "no measurement")
    return both


def job_images(profile: Profile, job: Job) -> tuple[int, int]:
    """(training images, test images) of a job: the release's counts, or the embedded
    set's size."""
    from multiad.data.expected import expected_counts

    if job.kind == "synthetic":
        s = profile.synthetic
        return s.get("n_train", 64), s.get("n_test_good", 16) + 3 * s.get(
            "n_test_per_defect", 8)
    counts = expected_counts(job.kind, job.category)

    def n(split: str) -> int:
        c = counts.get(split, {})
        return sum(getattr(c.get(k), "lo", 0) for k in ("normal", "anomalous"))

    return n("train"), n("test")


def run_seconds(plan: Plan, step: Step, t: Any, rates: Rates) -> float | None:
    """The estimated seconds of one run's part of a step (``t``: one of its trainings) at
    ``rates``; None where a rate is missing."""
    from multiad.methods import get_method

    method = get_method(t.cfg.method)
    n_train, n_test = job_images(plan.profile, t.job)
    if step.kind == "prepare":
        s = method.settings(t.cfg)
        if not rates.teacher:
            return None
        draws = s.distill_steps + 2 * -(-s.distill_norm_images // s.distill_batch_size)
        return draws * s.distill_batch_size * DISTIL_COST.get(t.cfg.teacher.backbone, 4.0) \
            / rates.teacher
    if step.kind == "train":
        rate = rates.train.get((method.name, t.cfg.data.image_size))
        return n_train * (t.cfg.train.epochs if method.trained else 1) / rate if rate else None
    rate = rates.evaluate.get((method.name, t.cfg.data.image_size))
    return n_test / rate if rate else None


def step_seconds(plan: Plan, step: Step, rates: Rates) -> float | None:
    """A step's estimated seconds at ``rates`` (its runs' sum); None where a rate is
    missing."""
    parts = [run_seconds(plan, step, t, rates) for t in step.runs]
    return None if None in parts else sum(p for p in parts if p is not None)


def hours(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else (
        f"{seconds / 60:.1f} min" if seconds >= 90 else f"{seconds:.0f} s")


def describe_plan(plan: Plan) -> str:
    """The plan as ``--plan`` prints it: each step, whether it is finished, its estimate;
    then the totals by method."""
    rates = rates_for(plan)
    lines = [f"plan of profile {plan.profile.name} → {plan.results}",
             f"estimates from {rates.source} (one run at a time; '?': no rate measured "
             "here for that method yet)", ""]
    by_method: dict[str, list[float | None]] = {}
    todo_s: list[float | None] = []
    for step in plan.steps:
        est = None if step.done else step_seconds(plan, step, rates)
        if not step.done:
            todo_s.append(est)
            for t in step.runs:
                by_method.setdefault(t.cfg.method, []).append(est)
        runs = f"{len(step.runs)} run(s)" if step.kind == "train" else ""
        needs = f"  after {', '.join(step.needs)}" if step.needs and not step.done else ""
        lines.append(f"  {'done' if step.done else 'todo'}  {step.id:<62} {runs:>9} "
                     f"{'' if step.done else hours(est):>9}{needs}")
    done = sum(s.done for s in plan.steps)
    known = [s for s in todo_s if s is not None]
    lines += ["", f"{len(plan.steps)} steps: {done} finished, {len(todo_s)} to run, "
                  f"estimated {hours(sum(known))}"
                  + (f" + {len(todo_s) - len(known)} step(s) without an estimate"
                     if len(known) < len(todo_s) else "")]
    return "\n".join(lines)


def schedule(plan: Plan, seconds: dict[str, float], gpus: int) -> tuple[float, list[str]]:
    """The plan's wall time on ``gpus`` GPUs (list scheduling: ready steps, longest
    remaining chain first, each taking its GPU share) and its critical path (the chain of
    steps that no number of GPUs shortens)."""
    from multiad.pipeline.run_plan import RESOURCES

    steps = [s for s in plan.steps if not s.done]
    after: dict[str, list[str]] = {s.id: [] for s in steps}
    for s in steps:
        for n in s.needs:
            if n in after:
                after[n].append(s.id)
    tail: dict[str, float] = {}
    for s in reversed(steps):  # longest chain from each step to the end
        tail[s.id] = seconds[s.id] + max((tail[a] for a in after[s.id]), default=0.0)
    share = {s.id: RESOURCES["cuda"][s.kind].get("num_gpus", 1) for s in steps}
    waiting = {s.id: sum(n in after for n in s.needs) for s in steps}
    ready = sorted((s.id for s in steps if not waiting[s.id]), key=lambda i: -tail[i])
    running: list[tuple[float, str]] = []
    now, free = 0.0, float(gpus)
    while ready or running:
        started = True
        while started:
            started = False
            for i in ready:
                if share[i] <= free + 1e-9:
                    ready.remove(i)
                    free -= share[i]
                    running.append((now + seconds[i], i))
                    started = True
                    break
        running.sort()
        now, done = running.pop(0)
        free += share[done]
        for a in after[done]:
            waiting[a] -= 1
            if not waiting[a]:
                ready.append(a)
        ready.sort(key=lambda i: -tail[i])
    first = max((s.id for s in steps if not any(n in after for n in s.needs)),
                key=lambda i: tail[i], default=None)
    path = []
    while first is not None:
        path.append(first)
        first = max(after[first], key=lambda i: tail[i], default=None)
    return now, path


def paper_scale(profile: Profile, rates: Rates, gpus: tuple[int, ...] = (1, 4, 8, 32)
                ) -> dict[str, Any]:
    """The profile planned from nothing (every step to run) at ``rates``: GPU-hours by
    method and step kind, and the wall time on each number of GPUs with its critical
    path."""
    import tempfile

    from multiad.pipeline.plan import build_plan
    from multiad.pipeline.run_plan import RESOURCES

    with tempfile.TemporaryDirectory() as empty:  # nothing finished; on a GPU
        plan = build_plan(profile, Path(empty), device="cuda", workdir=REPO)
        each = {(s.id, t.dir): run_seconds(plan, s, t, rates) for s in plan.steps
                for t in s.runs}
    missing = sorted({t.cfg.method for s in plan.steps for t in s.runs
                      if each[s.id, t.dir] is None})
    # a run without a rate counts 0 s (named in ``missing_rates``)
    known = {s.id: sum(each[s.id, t.dir] or 0.0 for t in s.runs) for s in plan.steps}
    methods: dict[str, dict[str, float]] = {}
    for s in plan.steps:
        share = RESOURCES["cuda"][s.kind].get("num_gpus", 1)
        for t in s.runs:
            row = methods.setdefault(t.cfg.method, {"trainings": 0, "train_h": 0.0,
                                                   "evaluate_h": 0.0, "prepare_h": 0.0})
            row["trainings"] += s.kind == "train"
            row[f"{s.kind}_h"] += (each[s.id, t.dir] or 0.0) * share / 3600
    walls = {n: schedule(plan, known, n) for n in gpus}
    return {"methods": methods, "missing_rates": missing, "steps": len(plan.steps),
            "wall_h": {n: w / 3600 for n, (w, _) in walls.items()},
            "critical_path": walls[gpus[-1]][1],
            "critical_h": sum(known[i] for i in walls[gpus[-1]][1]) / 3600,
            "rates": rates.source}

