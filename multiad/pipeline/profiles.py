"""Profiles of the reproduction (``multiad/profiles/<name>.yaml``): which datasets, which
methods, how long, which teacher and device, which ablations.

A profile's ``config`` overrides every run's ``RunConfig``; its ``baselines`` are the methods
re-run next to Multi-AD on every dataset, under the same conditions; its ``datasets`` are
the book's dataset pages, each with its jobs (an MVTec category, a BMAD set, a synthetic
set); its ``ablations`` the Table 4 and extended-switch pages.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PROFILE_DIR = Path(__file__).resolve().parents[1] / "profiles"
REFERENCE_DIR = Path(__file__).resolve().parents[1] / "reference"
# the paper's Table 3 (industrial) and Table 2 (medical); "loco": logical and structural
# anomalies in MVTec LOCO AD's layout, not in the paper (MHKD's headline set, its Table I)
DOMAINS = ("industrial", "medical", "loco")
PAPER_DOMAINS = ("industrial", "medical")
# every dataset page the book has a place for (the table of contents is static)
DATASET_PAGES = {"mvtec": "MVTec AD", "brain": "Brain MRI (BMAD)", "liver": "Liver CT (BMAD)",
                 "retina": "Retinal OCT (BMAD)", "mvtec-loco": "MVTec LOCO AD",
                 "synthetic-texture": "Synthetic textures (industrial-like demo data)",
                 "synthetic-medical": "Synthetic phantoms (medical-like demo data)",
                 "synthetic-realtex": "Real-texture gravel (photographed, defects blended "
                                      "from other photographs)",
                 "synthetic-loco": "Synthetic logical constraints (LOCO-like demo data)"}


@dataclass
class Job:
    """One dataset (one MVTec category, one BMAD set) of a profile."""

    id: str
    kind: str
    root: str
    category: str | None = None


@dataclass
class DatasetPage:
    """The jobs one dataset notebook runs, and their domain: the paper's Table 2 (medical)
    or 3 (industrial), or ``loco`` (MVTec LOCO AD's logical/structural split; not in the
    paper's tables)."""

    id: str
    title: str
    domain: str
    jobs: list[Job]


# the method the ablation pages vary (Table 4 is Multi-AD's): its section's switches
ABLATED = "multiad"


@dataclass
class Setting:
    """One row of an ablation: a name and the ``multiad.*`` switches it changes."""

    id: str
    label: str
    set: dict[str, Any]
    study: int | None = None  # Table 4's study number, where it is one

    def split(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(switches that change training, switches that act after training only)."""
        from multiad.methods import get_method

        eval_only = get_method(ABLATED).eval_only_keys
        train_set, eval_set = {}, {}
        for key, value in self.set.items():
            section, _, name = key.partition(".")
            if section != ABLATED:
                raise ValueError(f"ablation setting {self.id!r}: {key} — settings change "
                                 f"{ABLATED}.* switches only")
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
                           set={"multiad.se": se, "multiad.discriminator": d, "multiad.mff": mff}))
    return out


# Our switches beyond Table 4 (METHOD_SPEC's open points); "full" is the reference row.
EXTENDED_SETTINGS = [
    Setting("full", "Multi-AD as specified", {}),
    Setting("no-dilation", "no dilation (rates 1,1,1,1)", {"multiad.dilation_rates": [1, 1, 1, 1]}),
    Setting("no-fusion", "no student feature fusion", {"multiad.fusion": False}),
    Setting("lambda-fixed-0.1", "λ = 0.1 fixed (the first choice)",
            {"multiad.lambda_rule": "fixed", "multiad.lambda_adv": 0.1}),
    Setting("lambda-fixed-0.01", "λ = 0.01 fixed", {"multiad.lambda_rule": "fixed",
                                                    "multiad.lambda_adv": 0.01}),
    Setting("ratio-1", "balanced λ, r = 1", {"multiad.adv_ratio": 1.0}),
    Setting("sigma-2", "σ = 2 (smoothing)", {"multiad.sigma": 2.0}),
    Setting("sigma-8", "σ = 8 (smoothing)", {"multiad.sigma": 8.0}),
    Setting("mff-no-relu", "Ψ without ReLU (standardise only)", {"multiad.mff_relu": False}),
    Setting("raw-sum", "no Ψ, sum of raw maps", {"multiad.mff": False}),
    Setting("raw-product", "no Ψ, product of raw maps", {"multiad.mff": False,
                                                        "multiad.map_fusion": "product"}),
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
    # runs of one dataset a training step of the plan trains at once (train_many); 1: alone
    concurrent: int = 1
    # methods re-run next to the main one on every dataset, under the same conditions
    baselines: list[str] = field(default_factory=list)
    method: str = "multiad"  # the main method: its runs, ablations and figures lead the book
    # the teaching page's size (book/templates/walkthrough.ipynb); empty: its defaults
    walkthrough: dict[str, int] = field(default_factory=dict)
    # overrides for one method's runs only, after ``config`` (e.g. a method's reference
    # batch size where the profile's common one would leave it a handful of steps)
    per_method: dict[str, dict[str, Any]] = field(default_factory=dict)
    # a plan step's Ray resources by kind (prepare, train, evaluate), over the defaults of
    # multiad.pipeline.run_plan: num_cpus, num_gpus, memory_gib
    ray: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def methods(self) -> list[str]:
        """The main method, then the profile's baselines."""
        return [self.method, *self.baselines]

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
        from multiad.config import RunConfig, resolve_auto_teacher

        cfg = RunConfig().with_overrides(self.overrides(job, seed, device, extra)).validate()
        return resolve_auto_teacher(cfg)

    def overrides(self, job: Job, seed: int, device: str | None = None,
                  extra: dict[str, Any] | None = None) -> list[str]:
        method = (extra or {}).get("method", self.method)
        chosen = {**self.config, **self.per_method.get(method, {}), **(extra or {})}
        items = [f"{k}={yaml_value(v)}" for k, v in chosen.items()]
        items += [f"data.kind={job.kind}", f"data.root={job.root}",
                  f"data.category={job.category if job.category is not None else 'null'}",
                  f"train.seed={seed}"]
        if device:
            items.append(f"train.device={device}")
        return items


def yaml_value(v: Any) -> str:
    return json.dumps(v) if isinstance(v, (list, dict, bool)) or v is None else str(v)


def load_profile(name_or_path: str) -> Profile:
    """A profile by name (``smoke``, ``demo``, ``paper``) or by YAML path, with methods
    beyond its own after a ``+`` each: ``smoke+gaussian`` is the smoke profile with the
    (plugin) method ``gaussian`` run next to its baselines, under the same conditions, its
    results in the same folder (its columns join the tables beside the paper's)."""
    base, *extra = name_or_path.split("+")
    profile = _load_profile(base)
    profile.baselines = _baselines([*profile.baselines,
                                    *(m for m in extra if m not in profile.methods)],
                                   f"profile {name_or_path!r}")
    return profile


def _load_profile(name_or_path: str) -> Profile:
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
                   concurrent=_concurrent(d.get("concurrent", 1), str(path)),
                   baselines=_baselines(d.get("baselines") or [], str(path)),
                   walkthrough=_walkthrough(d.get("walkthrough") or {}, str(path)),
                   per_method=_per_method(d.get("per_method") or {}, str(path)),
                   ray=_ray(d.get("ray") or {}, str(path)))


RAY_STEPS = ("prepare", "train", "evaluate")
RAY_RESOURCES = ("num_cpus", "num_gpus", "memory_gib")


def _ray(d: dict[str, Any], where: str) -> dict[str, dict[str, float]]:
    for kind, res in d.items():
        if kind not in RAY_STEPS or not isinstance(res, dict) or any(
                k not in RAY_RESOURCES or isinstance(v, bool) or not isinstance(v, (int, float))
                or v < 0 for k, v in res.items()):
            raise ValueError(f"{where}: ray.{kind}: {res!r} — expected, for one of "
                             f"{', '.join(RAY_STEPS)}, numbers ≥ 0 for "
                             f"{', '.join(RAY_RESOURCES)}, e.g. ray: {{train: {{num_gpus: 1, "
                             "num_cpus: 8, memory_gib: 32}}")
    return {k: dict(v) for k, v in d.items()}


WALKTHROUGH_KEYS = ("image_size", "n_train", "steps", "batch_size")


def _walkthrough(d: dict[str, Any], where: str) -> dict[str, int]:
    bad = {k: v for k, v in d.items() if k not in WALKTHROUGH_KEYS
           or not isinstance(v, int) or isinstance(v, bool) or v < 1}
    if bad:
        raise ValueError(f"{where}: walkthrough {bad}: expected whole numbers ≥ 1 for "
                         f"{', '.join(WALKTHROUGH_KEYS)}")
    return dict(d)


def _baselines(names: list[str], where: str) -> list[str]:
    from multiad.methods import METHODS

    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise ValueError(f"{where}: methods {unknown} unknown; use any of "
                         + ", ".join(METHODS))
    return list(names)


def _per_method(d: dict[str, Any], where: str) -> dict[str, dict[str, Any]]:
    _baselines(list(d), f"{where}: per_method")
    bad = [m for m, v in d.items() if not isinstance(v, dict)]
    if bad:
        raise ValueError(f"{where}: per_method {bad}: expected a mapping of config keys, e.g. "
                         "{train.batch_size: 1}")
    return {m: dict(v) for m, v in d.items()}


def _concurrent(n: Any, where: str) -> int:
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"{where}: concurrent must be a whole number ≥ 1 (runs trained at "
                         f"once on one device), got {n!r}")
    return n
