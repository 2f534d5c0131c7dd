"""Running a plan (:mod:`multiad.pipeline.plan`) as Ray tasks: on a local Ray instance that
the command starts and stops, or on a cluster (``--ray ADDRESS``, ``RAY_ADDRESS``).

Each step is one task with its resources (a training group takes a GPU, an evaluation a
quarter of one; on CPUs, ``num_cpus`` threads); what it needs is passed as the object
references of those steps, so Ray starts it when they have finished. A task whose process
dies is retried (``max_retries``) and resumes from its runs' checkpoints; one that fails
on its own returns its error (:mod:`multiad.pipeline.steps`) and only its dependents are
skipped. Every node must see the repository and the results folder at the same path (a
shared filesystem), with this package installed in the same environment.

``--ray in-process`` runs the same steps one after the other in this process, without
Ray: for a machine where Ray cannot be installed (the GPU check's image, which gets no
network and only 64 MiB of wheels).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from multiad.pipeline.plan import Plan, Step
from multiad.pipeline.steps import Context, failure_file, run_step

# a step's resources by kind, on GPUs and on CPUs; a profile's ``ray:`` overrides them
RESOURCES: dict[str, dict[str, dict[str, float]]] = {
    "cuda": {"prepare": {"num_gpus": 1, "num_cpus": 4}, "train": {"num_gpus": 1, "num_cpus": 4},
             "evaluate": {"num_gpus": 0.25, "num_cpus": 2}},
    "cpu": {"prepare": {"num_cpus": 2}, "train": {"num_cpus": 2}, "evaluate": {"num_cpus": 2}},
}
RETRIES = 3  # a task whose worker or node died; its own errors are not retried
LOCAL_OBJECT_STORE = 256 * 2**20  # the tasks pass small results only
IN_PROCESS = "in-process"


def step_resources(plan: Plan, step: Step, cluster_cpus: float, cluster_gpus: float = 0
                   ) -> dict[str, Any]:
    """Ray's ``num_cpus``/``num_gpus``/``memory`` of a step (memory given in GiB in a
    profile, ``memory_gib``); CPUs at most what the largest node has. A run on device
    ``auto`` asks for a GPU when the cluster has any: Ray shows a task no GPU it did not
    ask for, so it would otherwise train on the CPU."""
    device = str(step.runs[0].cfg.train.device if step.runs else "cpu")
    on_gpu = device.startswith("cuda") or (device == "auto" and cluster_gpus > 0)
    kind = "cuda" if on_gpu else "cpu"
    chosen = {**RESOURCES[kind][step.kind], **plan.profile.ray.get(step.kind, {})}
    out: dict[str, Any] = {k: v for k, v in chosen.items() if k != "memory_gib"}
    if "memory_gib" in chosen:
        out["memory"] = int(chosen["memory_gib"] * 2**30)
    out["num_cpus"] = min(out.get("num_cpus", 1), cluster_cpus)
    return out


def _threads() -> None:
    """Torch's threads: the CPUs Ray gave the task."""
    import ray
    import torch

    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
    torch.set_num_threads(max(1, int(cpus)))


def _task(ctx: Context, step: Step, *needed: dict[str, Any]) -> dict[str, Any]:
    _threads()
    return run_step(ctx, step, *needed)


def connect(address: str | None) -> tuple[bool, str]:
    """Join the cluster at ``address`` (``auto``: the one this machine belongs to), or start
    a local instance (None or ``local``). Returns (started here, where)."""
    import ray

    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # nothing reported anywhere
    if ray.is_initialized():  # this process joined one already (a notebook, a test)
        return False, "the Ray instance this process is connected to"
    if address in (None, "", "local"):
        ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False,
                 log_to_driver=True,
                 object_store_memory=LOCAL_OBJECT_STORE, configure_logging=False)
        return True, f"a local Ray instance ({os.cpu_count()} CPUs), stopped at the end"
    info = ray.init(address=address, log_to_driver=True)
    url = getattr(info, "dashboard_url", "") or ""
    return False, f"the Ray cluster at {address}" + (f", dashboard http://{url}" if url
                                                       else "")


def run_plan(plan: Plan, address: str | None = None) -> list[dict[str, Any]]:
    """Run the plan's unfinished steps as Ray tasks; return their results in the order
    they finished. A progress line per finished step."""
    import ray

    from multiad.pipeline.runs import ensure_data

    todo = plan.todo
    if not todo:
        print("plan: every step is finished already")
        return []
    for job in {id(s.runs[0].job): s.runs[0].job for s in todo if s.runs}.values():
        ensure_data(plan.profile, job)  # once, before tasks that read it start
    if address == IN_PROCESS:
        return _in_process(plan)
    started, where = connect(address)
    print(f"plan: {len(todo)} step(s) on {where}", flush=True)
    t0 = time.time()
    try:
        alive = [n["Resources"] for n in ray.nodes() if n["Alive"]]
        cpus = max((r.get("CPU", 0) for r in alive), default=1)
        gpus = sum(r.get("GPU", 0) for r in alive)
        ctx = ray.put(Context(plan.profile, plan.results, plan.workdir, plan.device))
        remote = ray.remote(_task)
        refs: dict[str, Any] = {}
        for step in todo:
            needed = [refs[n] for n in step.needs if n in refs]
            refs[step.id] = remote.options(
                name=step.id, max_retries=RETRIES, retry_exceptions=False,
                **step_resources(plan, step, cpus, gpus)).remote(ctx, step, *needed)
        return _follow(plan, refs, t0)
    finally:
        if started:
            ray.shutdown()


def _in_process(plan: Plan) -> list[dict[str, Any]]:
    """The steps in their order, in this process (no Ray)."""
    print(f"plan: {len(plan.todo)} step(s) in this process, one after the other", flush=True)
    ctx = Context(plan.profile, plan.results, plan.workdir, plan.device)
    t0, done = time.time(), {}
    for step in plan.todo:
        done[step.id] = run_step(ctx, step, *(done[n] for n in step.needs if n in done))
        _report(done[step.id], len(done), len(plan.todo), t0)
    return list(done.values())


def _report(res: dict[str, Any], k: int, n: int, t0: float) -> None:
    state = ("ok" if res["ok"] and not res["failed"] else
             f"skipped ({res['skipped']})" if res.get("skipped") else
             f"FAILED: {res.get('error', '')[:300]}")
    print(f"[{k}/{n} · {(time.time() - t0) / 60:.1f} min] {res['id']}: {state}"
          + (f" ({res['wall_s']:.0f} s on {res.get('host', '?')})" if "wall_s" in res else ""),
          file=sys.stderr if state.startswith(("FAILED", "skipped")) else sys.stdout,
          flush=True)


def _follow(plan: Plan, refs: dict[str, Any], t0: float) -> list[dict[str, Any]]:
    """Wait for every task; a line per finished one."""
    import ray
    from ray.exceptions import RayError

    from multiad.atomic import write_json

    ids = {ref: step_id for step_id, ref in refs.items()}
    pending, results = list(refs.values()), []
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        step_id = ids[ready[0]]
        try:
            res = ray.get(ready[0])
        except RayError as exc:  # died after its retries, or a step it needs did
            res = {"id": step_id, "ok": False, "failed": [],
                   "error": f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1]}"}
            write_json(failure_file(plan.results, step_id), res)
        results.append(res)
        _report(res, len(results), len(refs), t0)
    return results
