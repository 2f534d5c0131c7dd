"""The plan of a reproduction: every step a profile needs, known before anything runs.

``make reproduce`` plans, then runs the plan (:mod:`multiad.pipeline.run_plan`, as Ray
tasks), then renders: the dataset and ablation pages only read finished results. A step is

- ``prepare``: work runs share and need first, once per key (a method's
  :meth:`~multiad.methods.contract.Method.preparation_key`: EfficientAD's and MHKD's
  distilled PDN teacher);
- ``train``: up to ``profile.concurrent`` runs of one dataset trained together
  (:func:`~multiad.engine.scheduler.train_many`: they share its decoded images and the
  teacher's features), every method's runs and the students the ablation rows need;
- ``evaluate``: one run's metrics (a method's run of a dataset and seed) or one ablation
  cell (a trained student evaluated under the cell's switches).

Each step names the steps it needs (``needs``); what is finished is marked ``done`` and
not run again (a run with its metrics, a training with its ``model.pt``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from multiad.pipeline.profiles import Job, Profile
from multiad.pipeline.runs import (
    Training,
    ablation_dir,
    ablation_training,
    evaluated,
    finished_ablation,
    job_training,
)


@dataclass(frozen=True)
class Step:
    """One task of the plan (see the module's docstring)."""

    id: str
    kind: str
    page: str  # the book page it serves
    needs: tuple[str, ...] = ()
    runs: tuple[Training, ...] = ()  # train: its runs; prepare: one run that needs it
    job: Job | None = None  # evaluate: its dataset, seed and method, or ablation cell
    seed: int = 0
    method: str = ""
    ablation: str = ""
    setting: str = ""
    done: bool = False

    @property
    def dirs(self) -> tuple[Path, ...]:
        """The run folders the step writes (an evaluation: the one it writes metrics to)."""
        return tuple(t.dir for t in self.runs)


@dataclass
class Plan:
    """A profile's steps in an order where every step comes after those it needs."""

    profile: Profile
    results: Path  # absolute: tasks may run anywhere that sees it at the same path
    workdir: Path  # the repository the profile's relative data paths are read from
    device: str | None
    steps: list[Step] = field(default_factory=list)

    def __iter__(self) -> Iterator[Step]:
        return iter(self.steps)

    def __getitem__(self, step_id: str) -> Step:
        return self._index()[step_id]

    def _index(self) -> dict[str, Step]:
        return {s.id: s for s in self.steps}

    @property
    def todo(self) -> list[Step]:
        return [s for s in self.steps if not s.done]

    def dependents(self, step_id: str) -> list[Step]:
        """The steps that need ``step_id``, directly or not."""
        out, frontier = [], {step_id}
        for s in self.steps:  # in order: a step comes after those it needs
            if frontier & set(s.needs):
                out.append(s)
                frontier.add(s.id)
        return out


def _rel(path: Path, results: Path) -> str:
    return str(path.relative_to(results)) if path.is_relative_to(results) else str(path)


def _groups(trainings: list[Training], size: int) -> list[list[Training]]:
    """Trainings of one dataset (and device, and cuDNN mode) in groups of at most ``size``,
    the datasets in their first-seen order. Within a dataset, the longest runs (most
    epochs; a fitted run: none) go first, each to the group with the fewest epochs so far,
    so that no group holds two of the longest (its wall time is its runs' together)."""
    from multiad.methods import get_method

    by_key: dict[tuple[str, str, bool], list[Training]] = {}
    for t in trainings:
        key = (t.job.id, t.cfg.train.device, t.cfg.train.deterministic)
        by_key.setdefault(key, []).append(t)
    out = []
    for runs in by_key.values():
        groups: list[list[Training]] = [[] for _ in range(-(-len(runs) // max(1, size)))]
        load = [0] * len(groups)

        def epochs(t: Training) -> int:
            return t.cfg.train.epochs if get_method(t.cfg.method).trained else 0

        for t in sorted(runs, key=epochs, reverse=True):
            k = min((i for i in range(len(groups)) if len(groups[i]) < max(1, size)),
                    key=lambda i: load[i])
            groups[k].append(t)
            load[k] += epochs(t)
        order = {t.dir: i for i, t in enumerate(runs)}
        out += sorted((sorted(g, key=lambda t: order[t.dir]) for g in groups),
                      key=lambda g: order[g[0].dir])
    return out


def build_plan(profile: Profile, results_dir: str | Path, device: str | None = None,
               pages: list[str] | None = None, workdir: str | Path | None = None) -> Plan:
    """Every step of ``profile`` (of the dataset and ablation pages in ``pages``; None: all)
    writing to ``results_dir``; finished ones marked done."""
    from multiad.methods import get_method
    from multiad.train import is_complete

    results = Path(results_dir).resolve()
    plan = Plan(profile, results, Path(workdir or os.getcwd()).resolve(), device)
    pages_of: dict[Path, str] = {}
    trainings: list[Training] = []  # unique run folders, in page order
    evaluations: list[Step] = []

    def need(t: Training, page: str) -> None:
        if t.dir not in pages_of:
            pages_of[t.dir] = page
            trainings.append(t)

    for page in profile.datasets.values():
        if pages is not None and page.id not in pages:
            continue
        for method in profile.methods:
            for job in page.jobs:
                for seed in profile.seeds:
                    t = job_training(profile, job, seed, results, device, method)
                    need(t, page.id)
                    evaluations.append(Step(
                        f"evaluate/{_rel(t.dir, results)}", "evaluate", page.id, job=job,
                        seed=seed, method=method, runs=(t,),
                        done=evaluated(t, mismatch=False)))
    main_eval = {s.runs[0].dir for s in evaluations}
    for ab in profile.ablations.values():
        page = f"ablation-{ab.id}"
        if pages is not None and page not in pages:
            continue
        for setting in ab.settings:
            for job in (profile.jobs[j] for j in ab.datasets):
                for seed in profile.seeds:
                    t = ablation_training(profile, setting, job, seed, results, device)
                    need(t, page)
                    main = job_training(profile, job, seed, results, device)
                    if t.dir == main.dir and main.dir not in main_eval:
                        # rows evaluated from the main run need its metrics first (once)
                        main_eval.add(main.dir)
                        evaluations.append(Step(
                            f"evaluate/{_rel(main.dir, results)}", "evaluate", page, job=job,
                            seed=seed, method=profile.method, runs=(main,),
                            done=evaluated(main, mismatch=False)))
                    out = ablation_dir(results, ab.id, setting.id, job, seed)
                    evaluations.append(Step(
                        f"evaluate/{_rel(out, results)}", "evaluate", page, job=job,
                        seed=seed, method=profile.method, ablation=ab.id,
                        setting=setting.id, runs=(t,),
                        done=finished_ablation(profile, ab, setting, job, seed, results,
                                                    device) is not None))

    todo = [t for t in trainings if not is_complete(t.cfg, t.dir) and not evaluated(t)]
    key_of = {t.dir: get_method(t.cfg.method).preparation_key(t.cfg) for t in todo}
    prepared: dict[str, Step] = {}
    for t in todo:
        key = key_of[t.dir]
        if key and key not in prepared:
            prepared[key] = Step(f"prepare/{key}", "prepare", pages_of[t.dir], runs=(t,))
    plan.steps += prepared.values()
    trained_by: dict[Path, str] = {}
    per_job: dict[str, int] = {}
    for group in _groups(todo, profile.concurrent):
        keys = {key_of[t.dir] for t in group}
        k = per_job[group[0].job.id] = per_job.get(group[0].job.id, -1) + 1
        step = Step(f"train/{group[0].job.id}/{k}", "train", pages_of[group[0].dir],
                    needs=tuple(prepared[key].id for key in sorted(keys - {None})),
                    runs=tuple(group))
        plan.steps.append(step)
        trained_by.update(dict.fromkeys((t.dir for t in group), step.id))
    main_step = {s.runs[0].dir: s.id for s in evaluations if not s.ablation}
    for s in evaluations:
        needs = [trained_by[s.runs[0].dir]] if s.runs[0].dir in trained_by else []
        if s.ablation and s.runs[0].dir in main_step:
            # a row evaluated from the main run reads (or copies) its metrics: after them
            needs.append(main_step[s.runs[0].dir])
        plan.steps.append(replace(s, needs=tuple(needs)))
    return plan
