"""`make reproduce`: profiles → papermill-run notebooks → results → the book.

A *profile* (``multiad/profiles/<name>.yaml``) says which datasets, how long, which
teacher and device. Its runs are grouped (``industrial``, ``medical``); each group is one
parameterised notebook (``book/templates/dataset_group.ipynb``) that trains and evaluates
every dataset of the group into ``results/<profile>/runs/<dataset>/seed<k>/`` and plots
them; ``book/templates/tables.ipynb`` then rebuilds the paper's tables from those
results. Executed notebooks land in ``book/executed/`` for the book to render.

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
from typing import Any

import yaml

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"
REFERENCE_DIR = Path(__file__).resolve().parent / "reference"
REPO = Path(__file__).resolve().parent.parent
TEMPLATES = REPO / "book" / "templates"
EXECUTED = REPO / "book" / "executed"
GROUPS = ("industrial", "medical")


@dataclass
class Job:
    """One dataset of a profile."""

    id: str
    kind: str
    root: str
    category: str | None = None


@dataclass
class Profile:
    name: str
    description: str
    paper_numbers: bool
    config: dict[str, Any]
    seeds: list[int]
    groups: dict[str, list[Job]]
    synthetic: dict[str, int] = field(default_factory=dict)

    def overrides(self, job: Job, seed: int, device: str | None = None) -> list[str]:
        items = [f"{k}={json.dumps(v) if isinstance(v, (list, dict)) else v}"
                 for k, v in self.config.items()]
        items += [f"data.kind={job.kind}", f"data.root={job.root}",
                  f"data.category={job.category if job.category is not None else 'null'}",
                  f"train.seed={seed}"]
        if device:
            items.append(f"train.device={device}")
        return items


def load_profile(name_or_path: str) -> Profile:
    """A profile by name (``smoke``, ``demo``, ``paper``) or by YAML path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PROFILE_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        known = ", ".join(p.stem for p in sorted(PROFILE_DIR.glob("*.yaml")))
        raise ValueError(f"profile {name_or_path!r}: no file {path}; known profiles: {known}")
    d = yaml.safe_load(path.read_text(encoding="utf-8"))
    unknown = set(d.get("groups", {})) - set(GROUPS)
    if unknown:
        raise ValueError(f"{path}: unknown group(s) {sorted(unknown)}; use {GROUPS}")
    groups = {g: [Job(**j) for j in d.get("groups", {}).get(g) or []] for g in GROUPS}
    return Profile(name=d["name"], description=" ".join(d["description"].split()),
                   paper_numbers=bool(d.get("paper_numbers")), config=d.get("config") or {},
                   seeds=list(d.get("seeds") or [0]), groups=groups,
                   synthetic=d.get("synthetic") or {})


def run_dir(results_dir: str | Path, job: Job, seed: int) -> Path:
    return Path(results_dir) / "runs" / job.id / f"seed{seed}"


def run_job(profile: Profile, job: Job, seed: int, results_dir: str | Path,
            device: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Train + evaluate one dataset/seed unless its metrics already exist; return them."""
    from multiad.config import RunConfig, RunConfigMismatch
    from multiad.evaluate import evaluate
    from multiad.train import comparable_config, train

    out = run_dir(results_dir, job, seed)
    metrics = out / "metrics.json"
    cfg = RunConfig().with_overrides(profile.overrides(job, seed, device)).validate()
    if metrics.exists():
        done = json.loads(metrics.read_text())
        if comparable_config(done["config"]) != comparable_config(cfg.to_dict()):
            raise RunConfigMismatch(
                f"{metrics}: finished with another configuration than profile "
                f"{profile.name!r} now asks for {job.id!r}; move that folder away to rerun")
        return done
    if job.kind == "synthetic" and profile.synthetic:
        from multiad.data.synthetic import make_synthetic

        make_synthetic(job.category or "texture", job.root, seed=0, **profile.synthetic)
    train(cfg, out, progress=progress)
    return evaluate(out, device=device or cfg.train.device, progress=progress)


def preflight(profile: Profile) -> list[str]:
    """Problems that would stop a real reproduction: missing data or teacher weights."""
    from multiad.data.check import check_dataset
    from multiad.weights import TeacherWeightsError, resolve_teacher_weights

    problems = []
    if profile.config.get("model.teacher_weights", "imagenet") == "imagenet":
        try:
            resolve_teacher_weights("imagenet")
        except TeacherWeightsError as exc:
            problems.append(str(exc))
    for jobs in profile.groups.values():
        for job in jobs:
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


def reproduce(profile_name: str, results_root: str | Path = "results",
              device: str | None = None, timeout: int | None = None,
              executed_dir: Path = EXECUTED) -> int:
    """Run every notebook of a profile; return the number of failed notebooks."""
    profile = load_profile(profile_name)
    results = Path(results_root) / profile.name
    if profile.paper_numbers:
        problems = preflight(profile)
        if problems:
            print(f"make reproduce PROFILE={profile.name}: cannot start:\n- "
                  + "\n- ".join(problems), file=sys.stderr)
            return len(problems)
    jobs = [(g, len(profile.groups[g])) for g in GROUPS if profile.groups[g]]
    total = sum(n for _, n in jobs) * len(profile.seeds)
    print(f"profile {profile.name}: {total} runs in {len(jobs)} notebooks → {results}")
    failed, done, t0 = 0, 0, time.time()
    params = {"profile": profile_name if Path(profile_name).suffix else profile.name,
              "results_dir": str(results.resolve()),
              "device": device or ""}
    for group, n in jobs:
        n_runs = n * len(profile.seeds)
        eta = "" if done == 0 else (
            f", ETA {(time.time() - t0) / done * (total - done) / 60:.0f} min")
        print(f"[{done}/{total} runs done{eta}] notebook {group}: {n_runs} runs", flush=True)
        ok = execute_notebook(TEMPLATES / "dataset_group.ipynb", executed_dir / f"{group}.ipynb",
                              {**params, "group": group}, results / "failed", timeout,
                              title=f"{group.capitalize()} images ({profile.name} profile)")
        failed += not ok
        done += n_runs
    print(f"[{done}/{total}] notebook tables", flush=True)
    failed += not execute_notebook(TEMPLATES / "tables.ipynb", executed_dir / "tables.ipynb",
                                   params, results / "failed", timeout)
    print(f"profile {profile.name}: finished in {(time.time() - t0) / 60:.1f} min, "
          f"{failed} notebook(s) failed")
    return failed


PAGES = {"tables": "Tables 2 and 3", "industrial": "Industrial images",
         "medical": "Medical images"}


def ensure_pages() -> None:
    """Placeholder pages for results not produced yet, so the book always builds."""
    import nbformat
    from nbformat.v4 import new_markdown_cell, new_notebook

    for name, title in PAGES.items():
        path = EXECUTED / f"{name}.ipynb"
        if not path.exists():
            nb = new_notebook(cells=[new_markdown_cell(
                f"# {title}\n\nNot run yet. `make reproduce` (or `make reproduce "
                "PROFILE=paper` with the real datasets) runs the notebooks whose results "
                "appear here.")])
            path.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, str(path))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="multiad reproduce", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="demo", help="smoke, demo, paper or a YAML path")
    p.add_argument("--results", default="results")
    p.add_argument("--device", help="override the profile's device")
    p.add_argument("--timeout", type=int, help="seconds per notebook cell")
    p.add_argument("--placeholders", action="store_true",
                   help="only write placeholder pages for results not produced yet")
    args = p.parse_args(argv)
    if args.placeholders:
        ensure_pages()
        return 0
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return 1 if reproduce(args.profile, args.results, args.device, args.timeout) else 0


if __name__ == "__main__":
    raise SystemExit(main())
