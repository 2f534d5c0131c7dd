"""`make reproduce`: profiles → papermill-run notebooks → results → the book.

A *profile* (``multiad/profiles/<name>.yaml``) says which datasets, how long, which
teacher and device, and which ablations. Each dataset page (MVTec AD with its categories,
Brain MRI, Liver CT, Retinal OCT, or the embedded synthetic sets) is one run of the
parameterised notebook ``book/templates/dataset.ipynb``, which trains and evaluates its
runs into ``results/<profile>/runs/<job>/seed<k>/``; each ablation (Table 4, and our
extended switches) is one run of ``book/templates/ablation.ipynb``; then the tables,
figures and explorer notebooks rebuild the paper's tables and figures from those results.
Executed notebooks land in ``book/executed/`` for the book to render.

Incremental and failure-tolerant: a run with a ``metrics.json`` is not redone, an
interrupted run resumes from its checkpoint, a failing notebook is reported and kept
aside (``results/<profile>/failed/``) without touching the other notebooks' results or the
last good page.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import yaml

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"
REFERENCE_DIR = Path(__file__).resolve().parent / "reference"
REPO = Path(__file__).resolve().parent.parent
TEMPLATES = REPO / "book" / "templates"
EXECUTED = REPO / "book" / "executed"
DOMAINS = ("industrial", "medical")
# every dataset page the book has a place for (the table of contents is static)
DATASET_PAGES = {"mvtec": "MVTec AD", "brain": "Brain MRI (BMAD)", "liver": "Liver CT (BMAD)",
                 "retina": "Retinal OCT (BMAD)",
                 "synthetic-texture": "Synthetic textures (industrial-like demo data)",
                 "synthetic-medical": "Synthetic phantoms (medical-like demo data)"}


@dataclass
class Job:
    """One dataset (one MVTec category, one BMAD set) of a profile."""

    id: str
    kind: str
    root: str
    category: str | None = None


@dataclass
class DatasetPage:
    """The jobs one dataset notebook runs, and the paper's domain (Table 2 or 3) they are in."""

    id: str
    title: str
    domain: str
    jobs: list[Job]


@dataclass
class Setting:
    """One row of an ablation: a name and the ``model.*`` switches it changes."""

    id: str
    label: str
    set: dict[str, Any]
    study: int | None = None  # Table 4's study number, where it is one

    def split(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(switches that change training, switches that act after training only)."""
        from multiad.methods import get_method

        eval_only = get_method("multiad").eval_only_keys  # the ablations are Multi-AD's
        train_set, eval_set = {}, {}
        for key, value in self.set.items():
            section, _, name = key.partition(".")
            if section != "model":
                raise ValueError(f"ablation setting {self.id!r}: {key} — settings change "
                                 "model.* switches only")
            (eval_set if name in eval_only else train_set)[name] = value
        return train_set, eval_set


@dataclass
class Ablation:
    id: str
    title: str
    datasets: list[str]  # job ids
    settings: list[Setting]


def table4_settings() -> list[Setting]:
    """Table 4's eight SE / D / MFF combinations, numbered as in the paper."""
    import csv

    rows = list(csv.DictReader((REFERENCE_DIR / "paper_table_4_ablation.csv").open()))
    out = []
    for r in rows:
        se, d, mff = (r[k] == "1" for k in ("se_block", "discriminator", "mff"))
        label = " + ".join(n for n, on in (("SE", se), ("D", d), ("MFF", mff)) if on) or "none"
        out.append(Setting(id=f"study{r['study']}", label=label, study=int(r["study"]),
                           set={"model.se": se, "model.discriminator": d, "model.mff": mff}))
    return out


# Our switches beyond Table 4 (METHOD_SPEC's open points); "full" is the reference row.
EXTENDED_SETTINGS = [
    Setting("full", "Multi-AD as specified", {}),
    Setting("no-dilation", "no dilation (rates 1,1,1,1)", {"model.dilation_rates": [1, 1, 1, 1]}),
    Setting("no-fusion", "no student feature fusion", {"model.fusion": False}),
    Setting("lambda-0.01", "λ_adv = 0.01", {"model.lambda_adv": 0.01}),
    Setting("lambda-1", "λ_adv = 1", {"model.lambda_adv": 1.0}),
    Setting("sigma-2", "σ = 2 (smoothing)", {"model.sigma": 2.0}),
    Setting("sigma-8", "σ = 8 (smoothing)", {"model.sigma": 8.0}),
    Setting("mff-no-relu", "Ψ without ReLU (standardise only)", {"model.mff_relu": False}),
    Setting("raw-sum", "no Ψ, sum of raw maps", {"model.mff": False}),
    Setting("raw-product", "no Ψ, product of raw maps", {"model.mff": False,
                                                        "model.map_fusion": "product"}),
]
ABLATION_TITLES = {"table4": "Table 4: ablation of SE, D and MFF",
                   "extended": "Extended ablation: our switches"}


@dataclass
class Profile:
    name: str
    description: str
    paper_numbers: bool
    config: dict[str, Any]
    seeds: list[int]
    datasets: dict[str, DatasetPage]
    ablations: dict[str, Ablation] = field(default_factory=dict)
    synthetic: dict[str, int] = field(default_factory=dict)
    # runs a notebook trains at once (multiad.train.train_many); 1: one after the other
    concurrent: int = 1

    @property
    def jobs(self) -> dict[str, Job]:
        return {j.id: j for page in self.datasets.values() for j in page.jobs}

    def domain_of(self, job_id: str) -> str:
        return next(p.domain for p in self.datasets.values() if job_id in
                    {j.id for j in p.jobs})

    def with_params(self, data_root: str = "", epochs: int = 0,
                    seeds: list[int] | None = None, concurrent: int = 0) -> Profile:
        """This profile with a notebook's overrides (empty / 0: the profile's own):
        ``data_root`` replaces the ``data/`` folder of every real dataset (``data/mvtec`` →
        ``<data_root>/mvtec``, ``data/BMAD/Brain_AD`` → ``<data_root>/BMAD/Brain_AD``),
        ``epochs`` the training length, ``seeds`` the seeds, ``concurrent`` the runs trained
        at once (fewer on a GPU with little memory: at 256², four runs at once took 8.7 GiB
        on an H100, one alone 3.8 GiB)."""
        import copy

        out = copy.deepcopy(self)
        if data_root:
            for page in out.datasets.values():
                for job in page.jobs:
                    if job.kind != "synthetic":
                        parts = Path(job.root).parts
                        rel = Path(*parts[1:]) if len(parts) > 1 and parts[0] == "data" \
                            else Path(job.root).name
                        job.root = str(Path(data_root) / rel)
        if epochs:
            out.config["train.epochs"] = int(epochs)
        if seeds:
            out.seeds = [int(s) for s in seeds]
        if concurrent:
            out.concurrent = _concurrent(concurrent, "notebook parameter")
        return out

    def run_config(self, job: Job, seed: int, device: str | None = None,
                   extra: dict[str, Any] | None = None) -> Any:
        """The ``RunConfig`` of one run of this profile, validated, with
        ``teacher.weights=auto`` made concrete (the backbone it falls back to is recorded)."""
        from multiad.backbones import resolve_auto_teacher
        from multiad.config import RunConfig

        cfg = RunConfig().with_overrides(self.overrides(job, seed, device, extra)).validate()
        return resolve_auto_teacher(cfg)

    def overrides(self, job: Job, seed: int, device: str | None = None,
                  extra: dict[str, Any] | None = None) -> list[str]:
        items = [f"{k}={_yaml_value(v)}" for k, v in {**self.config, **(extra or {})}.items()]
        items += [f"data.kind={job.kind}", f"data.root={job.root}",
                  f"data.category={job.category if job.category is not None else 'null'}",
                  f"train.seed={seed}"]
        if device:
            items.append(f"train.device={device}")
        return items


def _yaml_value(v: Any) -> str:
    return json.dumps(v) if isinstance(v, (list, dict, bool)) or v is None else str(v)


def load_profile(name_or_path: str) -> Profile:
    """A profile by name (``smoke``, ``demo``, ``paper``) or by YAML path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PROFILE_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        known = ", ".join(p.stem for p in sorted(PROFILE_DIR.glob("*.yaml")))
        raise ValueError(f"profile {name_or_path!r}: no file {path}; known profiles: {known}")
    d = yaml.safe_load(path.read_text(encoding="utf-8"))
    datasets = {}
    for page_id, page in (d.get("datasets") or {}).items():
        if page_id not in DATASET_PAGES:
            raise ValueError(f"{path}: dataset page {page_id!r} has no place in the book; "
                             f"use one of {', '.join(DATASET_PAGES)}")
        if page.get("domain") not in DOMAINS:
            raise ValueError(f"{path}: dataset {page_id!r}: domain must be one of {DOMAINS}")
        datasets[page_id] = DatasetPage(page_id, page.get("title") or DATASET_PAGES[page_id],
                                        page["domain"], [Job(**j) for j in page["jobs"]])
    ids = [j.id for p in datasets.values() for j in p.jobs]
    if len(ids) != len(set(ids)):
        raise ValueError(f"{path}: job ids must be unique, got {ids}")
    ablations = {}
    for ab_id, ab in (d.get("ablations") or {}).items():
        if ab_id not in ABLATION_TITLES:
            raise ValueError(f"{path}: unknown ablation {ab_id!r}; use {list(ABLATION_TITLES)}")
        missing = set(ab["datasets"]) - set(ids)
        if missing:
            raise ValueError(f"{path}: ablation {ab_id!r} names unknown jobs {sorted(missing)}")
        known = {s.id: s for s in (table4_settings() if ab_id == "table4"
                                   else EXTENDED_SETTINGS)}
        chosen = ab.get("settings") or list(known)
        unknown = set(chosen) - set(known)
        if unknown:
            raise ValueError(f"{path}: ablation {ab_id!r}: unknown settings {sorted(unknown)}; "
                             f"known: {', '.join(known)}")
        ablations[ab_id] = Ablation(ab_id, ABLATION_TITLES[ab_id], list(ab["datasets"]),
                                    [known[s] for s in chosen])
    return Profile(name=d["name"], description=" ".join(d["description"].split()),
                   paper_numbers=bool(d.get("paper_numbers")), config=d.get("config") or {},
                   seeds=list(d.get("seeds") or [0]), datasets=datasets, ablations=ablations,
                   synthetic=d.get("synthetic") or {},
                   concurrent=_concurrent(d.get("concurrent", 1), str(path)))


def _concurrent(n: Any, where: str) -> int:
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"{where}: concurrent must be a whole number ≥ 1 (runs trained at "
                         f"once on one device), got {n!r}")
    return n


class Training(NamedTuple):
    """One training a notebook needs: its configuration, its folder, and its dataset."""

    cfg: Any  # RunConfig
    dir: Path
    job: Job


def run_dir(results_dir: str | Path, job: Job, seed: int) -> Path:
    return Path(results_dir) / "runs" / job.id / f"seed{seed}"


def ablation_dir(results_dir: str | Path, ablation: str, setting: str, job: Job,
                 seed: int) -> Path:
    return Path(results_dir) / "ablation" / ablation / setting / job.id / f"seed{seed}"


def trained_dir(results_dir: str | Path, train_set: dict[str, Any], job: Job, seed: int) -> Path:
    """Where the student for a set of training switches lives: the main run when the
    switches change nothing, else one folder per distinct combination (shared by every
    ablation row that trains the same way, e.g. Table 4's MFF on/off pairs)."""
    if not train_set:
        return run_dir(results_dir, job, seed)
    def word(v: Any) -> str:
        return "-".join(map(str, v)) if isinstance(v, (list, tuple)) else _yaml_value(v)

    key = ",".join(f"{k}={word(v)}" for k, v in sorted(train_set.items()))
    return Path(results_dir) / "trained" / key / job.id / f"seed{seed}"


def _finished(metrics: Path, cfg_dict: dict[str, Any], what: str) -> dict[str, Any] | None:
    from multiad.config import RunConfigMismatch
    from multiad.train import comparable_config

    if not metrics.exists():
        return None
    done = json.loads(metrics.read_text())
    if done.get("epochs_trained") != cfg_dict["train"]["epochs"]:
        return None  # asked for another length: train again (from its checkpoint if kept)
    if comparable_config(done["config"]) != comparable_config(cfg_dict):
        raise RunConfigMismatch(
            f"{metrics}: finished with another configuration than {what} now asks for; "
            "move that folder away to rerun")
    return done


def _ensure_data(profile: Profile, job: Job) -> None:
    if job.kind == "synthetic" and profile.synthetic:
        from multiad.data.synthetic import make_synthetic

        make_synthetic(job.category or "texture", job.root, seed=0, **profile.synthetic)


def job_training(profile: Profile, job: Job, seed: int, results_dir: str | Path,
                 device: str | None = None) -> Training:
    """The training of one dataset/seed's main run: its configuration and folder."""
    cfg = profile.run_config(job, seed, device)
    return Training(cfg, run_dir(results_dir, job, seed), job)


def run_job(profile: Profile, job: Job, seed: int, results_dir: str | Path,
            device: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Train + evaluate one dataset/seed unless its metrics already exist; return them."""
    from multiad.evaluate import evaluate
    from multiad.train import train

    cfg, out, _ = job_training(profile, job, seed, results_dir, device)
    done = _finished(out / "metrics.json", cfg.to_dict(), f"profile {profile.name!r} ({job.id})")
    if done is not None:
        return done
    _ensure_data(profile, job)
    train(cfg, out, progress=progress)
    return evaluate(out, device=device or cfg.train.device, progress=progress)


def run_ablation(profile: Profile, ablation: Ablation, setting: Setting, job: Job, seed: int,
                 results_dir: str | Path, device: str | None = None, progress: bool = True
                 ) -> dict[str, Any]:
    """One ablation cell: train only when no finished run already trained the same way,
    then evaluate under the setting's post-training switches; return the metrics."""
    from multiad.atomic import write_json
    from multiad.evaluate import evaluate
    from multiad.train import train

    out = ablation_dir(results_dir, ablation.id, setting.id, job, seed)
    cfg = profile.run_config(job, seed, device, setting.set)
    done = _finished(out / "metrics.json", cfg.to_dict(),
                     f"ablation {ablation.id}/{setting.id} ({job.id})")
    if done is not None:
        return done
    train_set, eval_set = _ablation_switches(profile, setting, job, seed, device)
    src = trained_dir(results_dir, train_set, job, seed)
    if not train_set:
        main = run_job(profile, job, seed, results_dir, device, progress)  # the main run
        if not eval_set:  # this row is the main run itself
            write_json(out / "metrics.json", {**main, "same_as": main["run"]})
            return json.loads((out / "metrics.json").read_text())
    else:
        _ensure_data(profile, job)
        train_cfg, _, _ = ablation_training(profile, setting, job, seed, results_dir, device)
        train(train_cfg, src, progress=progress)
    return evaluate(src, device=device or cfg.train.device, progress=progress, out_dir=out,
                    model_overrides=eval_set, save_maps=False, max_overlays=0)


def _ablation_switches(profile: Profile, setting: Setting, job: Job, seed: int,
                       device: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The setting's (training, post-training) switches that differ from the profile's."""
    base = profile.run_config(job, seed, device).to_dict()["model"]
    new = profile.run_config(job, seed, device, setting.set).to_dict()["model"]
    train_set, eval_set = ({k: v for k, v in part.items() if new[k] != base[k]}
                           for part in setting.split())
    return train_set, eval_set


def ablation_training(profile: Profile, setting: Setting, job: Job, seed: int,
                      results_dir: str | Path, device: str | None = None) -> Training:
    """The training an ablation cell needs: the main run's when the setting acts after
    training only, else the student trained with the setting's training switches (shared
    by every row that trains the same way)."""
    train_set, _ = _ablation_switches(profile, setting, job, seed, device)
    if not train_set:
        return job_training(profile, job, seed, results_dir, device)
    cfg = profile.run_config(job, seed, device,
                             {f"model.{k}": v for k, v in train_set.items()})
    return Training(cfg, trained_dir(results_dir, train_set, job, seed), job)


def page_trainings(profile: Profile, jobs: list[Job], results_dir: str | Path,
                   device: str | None = None) -> list[Training]:
    """A dataset page's trainings: its own runs and, while they are fewer than
    ``profile.concurrent``, students its datasets' ablation rows will need, so that the
    device trains a full group (a BMAD set's main run with its three Table 4 students);
    the ablation page then finds them trained."""
    from multiad.train import is_complete

    own = [job_training(profile, job, seed, results_dir, device)
           for job in jobs for seed in profile.seeds]
    free = profile.concurrent - len(own)
    if free <= 0:
        return own
    seen = {t.dir for t in own}
    for ab in profile.ablations.values():
        for setting in ab.settings:
            for job in (j for j in jobs if j.id in ab.datasets):
                for seed in profile.seeds:
                    t = ablation_training(profile, setting, job, seed, results_dir, device)
                    if free > 0 and t.dir not in seen and not is_complete(t.cfg, t.dir):
                        own.append(t)
                        seen.add(t.dir)
                        free -= 1
    return own


def train_ahead(profile: Profile, trainings: list[Training], progress: bool = True
                ) -> list[Path]:
    """Train a notebook's runs ``profile.concurrent`` at a time before it evaluates them
    (one after the other, inside ``run_job``/``run_ablation``, when ``concurrent`` is 1).

    Runs that fail here are reported and left to be retried one at a time by the notebook,
    where their error then shows in context. Returns the folders that failed.
    """
    from multiad.train import TrainingFailed, is_complete, train_many

    if profile.concurrent <= 1:
        return []
    unique = list({t.dir: t for t in trainings}.values())  # Table 4's MFF pairs share one
    todo = [t for t in unique if not is_complete(t.cfg, t.dir) and not _evaluated(t)]
    if not todo:
        return []
    # one dataset after the other (stable): its runs share its decoded images on the
    # device, which are freed when its last run ends
    first = {}
    for t in todo:
        first.setdefault(t.job.id, len(first))
    todo.sort(key=lambda t: first[t.job.id])
    for t in todo:
        _ensure_data(profile, t.job)
    print(f"training {len(todo)} run(s) ({len(unique) - len(todo)} already trained), up to "
          f"{profile.concurrent} at once", flush=True)
    try:
        train_many([(t.cfg, t.dir) for t in todo], concurrent=profile.concurrent,
                   progress=progress)
    except TrainingFailed as exc:
        print(f"{exc}\n(these are retried one at a time below)", file=sys.stderr)
        return list(exc.failures)
    except Exception as exc:  # a group of one re-raises its run's own error
        print(f"{todo[0].dir}: {type(exc).__name__}: {exc}\n(retried below)", file=sys.stderr)
        return [todo[0].dir]
    return []


def _evaluated(t: Training) -> bool:
    """A main run whose metrics exist for this configuration (``run_job`` skips it)."""
    from multiad.config import RunConfigMismatch

    try:
        return _finished(t.dir / "metrics.json", t.cfg.to_dict(), str(t.dir)) is not None
    except RunConfigMismatch:
        return True  # not ours to retrain: its notebook cell says what is wrong


def preflight(profile: Profile) -> list[str]:
    """Problems that would stop a real reproduction: missing data or teacher weights."""
    from multiad.backbones import PAPER_BACKBONE, WeightsError, resolve
    from multiad.data.check import check_dataset

    problems = []
    if profile.config.get("teacher.weights", "imagenet") == "imagenet":
        try:
            resolve(profile.config.get("teacher.backbone") or PAPER_BACKBONE, "imagenet")
        except WeightsError as exc:
            problems.append(str(exc))
    for job in profile.jobs.values():
        if job.kind == "synthetic":
            continue
        report = check_dataset(job.kind, job.root, job.category)
        if not report.ok:
            problems.append(f"{job.id}: dataset at {job.root} is not usable — run "
                            f"`multiad check-data --data {job.kind} --root {job.root}"
                            + (f" --category {job.category}`" if job.category else "`")
                            + " and see data/README.md")
    return problems


def execute_notebook(template: Path, output: Path, parameters: dict[str, Any],
                     failed_dir: Path, timeout: int | None = None, title: str | None = None
                     ) -> bool:
    """Run ``template`` with papermill into ``output`` atomically; True on success.

    A failed execution is kept in ``failed_dir`` for inspection and ``output`` (the last
    good page) is left as it was.
    """
    import papermill as pm

    output.parent.mkdir(parents=True, exist_ok=True)
    running = output.with_name(f".{output.stem}.running.ipynb")
    try:
        pm.execute_notebook(str(template), str(running), parameters=parameters,
                            cwd=str(REPO), kernel_name="python3", progress_bar=False,
                            execution_timeout=timeout, request_save_on_cell_execute=True)
    except Exception as exc:  # papermill raises several kinds
        failed_dir.mkdir(parents=True, exist_ok=True)
        if running.exists():
            shutil.move(str(running), failed_dir / output.name)
        last = str(exc).strip().splitlines()[-1] if str(exc).strip() else ""
        print(f"  FAILED {output.name}: {type(exc).__name__}: {last}\n"
              f"  (the failed notebook is in {failed_dir / output.name})", file=sys.stderr)
        return False
    tag_cells(running, title)
    os.replace(running, output)
    return True


def tag_cells(path: Path, title: str | None = None) -> None:
    """Hide code in the rendered book (myst-nb reads cell tags, not papermill's report
    mode) and give the page its title (papermill does not template markdown)."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    if title:
        first = next(c for c in nb.cells if c.cell_type == "markdown")
        body = first.source.split("\n", 1)[1] if first.source.startswith("#") else first.source
        first.source = f"# {title}\n{body}"
    for cell in nb.cells:
        if cell.cell_type == "code":
            tags = set(cell.metadata.get("tags", []))
            tags.add("remove-input" if {"parameters", "injected-parameters"} & tags
                     else "hide-input")
            if {"parameters", "injected-parameters"} & tags:
                tags.add("remove-cell")
            cell.metadata["tags"] = sorted(tags)
    nbformat.write(nb, str(path))


@dataclass
class Notebook:
    """One papermill execution of ``make reproduce``."""

    template: str
    page: str
    title: str
    parameters: dict[str, Any]
    runs: int  # training/evaluation runs it performs (for the progress line)


def plan(profile: Profile) -> list[Notebook]:
    """The notebooks of a profile, in order: datasets, ablations, then the pages that only
    read results (tables, figures, explorer)."""
    seeds = len(profile.seeds)
    out = [Notebook("dataset.ipynb", page.id, f"{page.title} ({profile.name} profile)",
                    {"dataset": page.id}, len(page.jobs) * seeds)
           for page in profile.datasets.values()]
    out += [Notebook("ablation.ipynb", f"ablation-{ab.id}", f"{ab.title} ({profile.name} "
                     "profile)", {"ablation": ab.id}, len(ab.datasets) * len(ab.settings) * seeds)
            for ab in profile.ablations.values()]
    out += [Notebook("tables.ipynb", "tables", "", {}, 0),
            Notebook("figures.ipynb", "figures", "", {}, 0)]
    if (TEMPLATES / "explorer.ipynb").exists():
        out.append(Notebook("explorer.ipynb", "explorer", "", {}, 0))
    return out


def reproduce(profile_name: str, results_root: str | Path = "results",
              device: str | None = None, timeout: int | None = None,
              executed_dir: Path = EXECUTED, only: list[str] | None = None,
              concurrent: int = 0) -> int:
    """Run every notebook of a profile (or those whose page is in ``only``); return the
    number of failed notebooks."""
    profile = load_profile(profile_name)
    results = Path(results_root) / profile.name
    if profile.paper_numbers:
        problems = preflight(profile)
        if problems:
            print(f"make reproduce PROFILE={profile.name}: cannot start:\n- "
                  + "\n- ".join(problems), file=sys.stderr)
            return len(problems)
    notebooks = [nb for nb in plan(profile) if not only or nb.page in only]
    total = sum(nb.runs for nb in notebooks)
    print(f"profile {profile.name}: {len(notebooks)} notebooks, {total} runs → {results}")
    failed, done, t0 = 0, 0, time.time()
    # the notebooks run in the repository: a results folder inside it is passed (and shown
    # on the pages) relative to it
    where = results.resolve()
    shown = where.relative_to(REPO) if where.is_relative_to(REPO) else where
    params = {"profile": profile_name if Path(profile_name).suffix else profile.name,
              "results_dir": str(shown), "device": device or ""}
    for k, nb in enumerate(notebooks, 1):
        elapsed = time.time() - t0
        eta = f", ETA {elapsed / done * (total - done) / 60:.0f} min" if done else ""
        print(f"[notebook {k}/{len(notebooks)} · {done}/{total} runs done · "
              f"{elapsed / 60:.1f} min{eta}] {nb.page}" + (f": {nb.runs} runs" if nb.runs
                                                           else ""), flush=True)
        trains = nb.template in ("dataset.ipynb", "ablation.ipynb")
        extra = {"concurrent": concurrent} if concurrent and trains else {}
        ok = execute_notebook(TEMPLATES / nb.template, executed_dir / f"{nb.page}.ipynb",
                              {**params, **nb.parameters, **extra}, results / "failed", timeout,
                              title=nb.title or None)
        failed += not ok
        done += nb.runs
    print(f"profile {profile.name}: finished in {(time.time() - t0) / 60:.1f} min, "
          f"{failed} notebook(s) failed")
    return failed


PAGES = {"tables": "Tables 2 and 3", "figures": "Figures 6, 7 and 8",
         "ablation-table4": ABLATION_TITLES["table4"],
         "ablation-extended": ABLATION_TITLES["extended"], "explorer": "Heatmap explorer",
         **DATASET_PAGES}


def ensure_pages(executed_dir: Path = EXECUTED) -> None:
    """Placeholder pages for results not produced yet, so the book always builds."""
    import nbformat
    from nbformat.v4 import new_markdown_cell, new_notebook

    for name, title in PAGES.items():
        path = executed_dir / f"{name}.ipynb"
        if not path.exists():
            nb = new_notebook(cells=[new_markdown_cell(
                f"# {title}\n\nNot run yet: no profile run so far has produced this page. "
                "`make reproduce` runs the demo profile on the embedded synthetic data, "
                "`make reproduce PROFILE=paper` the real datasets; see {doc}`../reproduce`.")])
            path.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, str(path))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="multiad reproduce", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="demo", help="smoke, demo, paper or a YAML path")
    p.add_argument("--results", default="results")
    p.add_argument("--device", help="override the profile's device")
    p.add_argument("--timeout", type=int, help="seconds per notebook cell")
    p.add_argument("--concurrent", type=int, default=0, metavar="N",
                   help="runs trained at once on the device (default: the profile's)")
    p.add_argument("--only", nargs="+", metavar="PAGE",
                   help="run only these pages (e.g. mvtec tables); default: all")
    p.add_argument("--placeholders", action="store_true",
                   help="only write placeholder pages for results not produced yet")
    args = p.parse_args(argv)
    if args.placeholders:
        ensure_pages()
        return 0
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    if args.concurrent < 0:
        p.error("--concurrent must be ≥ 1 (or 0: the profile's)")
    return 1 if reproduce(args.profile, args.results, args.device, args.timeout,
                          only=args.only, concurrent=args.concurrent) else 0


if __name__ == "__main__":
    raise SystemExit(main())
