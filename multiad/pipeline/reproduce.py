"""`make reproduce`: a profile → its plan → the plan run (Ray tasks) → the book's pages.

A *profile* (``multiad/profiles/<name>.yaml``) says which datasets, methods, seeds and
ablations, how long, which teacher and device. **Plan**: every training and evaluation it
needs, known before anything runs (:mod:`multiad.pipeline.plan`; ``--plan`` prints it with
its estimated time and what is finished). **Run**: each step a Ray task
(:mod:`multiad.pipeline.run_plan`) on a local Ray instance started and stopped here, or on
a cluster (``--ray ADDRESS``, ``RAY_ADDRESS``). **Render**: papermill runs the book's
notebooks, which only read the results — one per dataset page
(``book/templates/dataset.ipynb``: MVTec AD's categories, each BMAD set, the embedded
synthetic sets), one per ablation (``ablation.ipynb``), then the tables, figures and
explorer. Executed notebooks land in ``book/executed/`` for the book to render.

Incremental and failure-tolerant: a run with a ``metrics.json`` is not redone, an
interrupted run resumes from its checkpoint, a failed step is recorded in
``results/<profile>/failed/`` and only the steps that need it are skipped; a failing
notebook is kept aside there without touching the other pages or the last good page.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from multiad.pipeline.profiles import (
    ABLATION_TITLES,
    DATASET_PAGES,
    PAPER_DOMAINS,
    Profile,
    load_profile,
)
from multiad.pipeline.runs import data_problems, page_jobs, preflight

if TYPE_CHECKING:
    from multiad.pipeline.plan import Plan

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "book" / "templates"
EXECUTED = REPO / "book" / "executed"


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


def notebooks_of(profile: Profile) -> list[Notebook]:
    """The notebooks of a profile, in order: datasets, ablations, then the pages that read
    the results together (tables, figures, explorer) and the teaching page."""
    out = [Notebook("dataset.ipynb", page.id, f"{page.title} ({profile.name} profile)",
                    {"dataset": page.id}) for page in profile.datasets.values()]
    out += [Notebook("ablation.ipynb", f"ablation-{ab.id}", f"{ab.title} ({profile.name} "
                     "profile)", {"ablation": ab.id}) for ab in profile.ablations.values()]
    out += [Notebook("tables.ipynb", "tables", "", {}),
            Notebook("figures.ipynb", "figures", "", {})]
    if (TEMPLATES / "explorer.ipynb").exists():
        out.append(Notebook("explorer.ipynb", "explorer", "", {}))
    # the teaching page trains its own short run (about a minute on two cores)
    out.append(Notebook("walkthrough.ipynb", "walkthrough", "", dict(profile.walkthrough)))
    return out


def optional_pages_without_data(profile: Profile, notebooks: list[Notebook],
                                only: list[str] | None) -> tuple[list[str], list[str]]:
    """Dataset pages beyond the paper's tables (MVTec LOCO AD) whose data is missing: left
    out of a run, and said, unless named with ``--only`` or needed by an ablation page.
    Returns (the pages left out, the optional pages whose data was checked and found)."""
    ablated = {j.id for j in page_jobs(profile, [nb.page for nb in notebooks
                                                 if nb.page.startswith("ablation-")])}
    left_out, found = [], []
    for page in profile.datasets.values():
        if (page.domain in PAPER_DOMAINS or (only and page.id in only)
                or ablated & {j.id for j in page.jobs}):
            continue
        problems = data_problems(page.jobs)
        if not problems:
            found.append(page.id)
            continue
        left_out.append(page.id)
        print(f"{page.id}: left out — its data is not here ({problems[0]}); it is not "
              "one of the paper's tables, and its page says 'not run'. Name it with "
              "--only to require it.", file=sys.stderr)
    return left_out, found


def reproduce(profile_name: str, results_root: str | Path = "results",
              device: str | None = None, timeout: int | None = None,
              executed_dir: Path = EXECUTED, only: list[str] | None = None,
              concurrent: int = 0, ray_address: str | None = None,
              show_plan: bool = False) -> int:
    """Plan the profile (or the pages in ``only``), run the plan on Ray (a local instance
    unless ``ray_address``), then render its notebooks; return the number of failed steps
    and notebooks. ``show_plan``: print the plan and stop."""
    profile = load_profile(profile_name).with_params(concurrent=concurrent)
    results = Path(results_root) / profile.name
    notebooks = [nb for nb in notebooks_of(profile) if not only or nb.page in only]
    if profile.paper_numbers and not show_plan:  # every teacher, and the pages' data
        left_out, found = optional_pages_without_data(profile, notebooks, only)
        notebooks = [nb for nb in notebooks if nb.page not in left_out]
        # the optional pages' data was just checked: not again
        problems = preflight(profile, [nb.page for nb in notebooks if nb.page not in found])
        if problems:
            print(f"make reproduce PROFILE={profile.name}: cannot start:\n- "
                  + "\n- ".join(problems), file=sys.stderr)
            return len(problems)
    plan = make_plan(profile, results, device, [nb.page for nb in notebooks])
    if show_plan:
        from multiad.pipeline.plan_costs import describe_plan

        print(describe_plan(plan))
        return 0
    t0 = time.time()
    failed = 0
    if plan.todo:
        from multiad.pipeline.run_plan import run_plan

        steps = run_plan(plan, ray_address)
        failed = sum(not r["ok"] or bool(r["failed"]) for r in steps)
        own = sum(r.get("wall_s", 0.0) for r in steps)
        print(f"profile {profile.name}: {len(steps)} step(s) in "
              f"{(time.time() - t0) / 60:.1f} min (the steps' own time: {own / 60:.1f} min), "
              f"{failed} failed or skipped (records in {results / 'failed'})", flush=True)
    # the notebooks run in the repository: a results folder inside it is passed (and shown
    # on the pages) relative to it
    where = results.resolve()
    shown = where.relative_to(REPO) if where.is_relative_to(REPO) else where
    params = {"profile": profile_name, "results_dir": str(shown), "device": device or ""}
    for k, nb in enumerate(notebooks, 1):
        print(f"[page {k}/{len(notebooks)} · {(time.time() - t0) / 60:.1f} min] {nb.page}",
              flush=True)
        ok = execute_notebook(TEMPLATES / nb.template, executed_dir / f"{nb.page}.ipynb",
                              {**params, **nb.parameters}, results / "failed", timeout,
                              title=nb.title or None)
        failed += not ok
    print(f"profile {profile.name}: finished in {(time.time() - t0) / 60:.1f} min, "
          f"{failed} step(s) or page(s) failed")
    return failed


def make_plan(profile: Profile, results: Path, device: str | None,
              pages: list[str]) -> Plan:
    """The plan of the dataset and ablation pages among ``pages``."""
    from multiad.pipeline.plan import build_plan

    return build_plan(profile, results, device, pages, workdir=REPO)


PAGES = {"tables": "Tables 2 and 3", "figures": "Figures 6, 7 and 8",
         "ablation-table4": ABLATION_TITLES["table4"],
         "ablation-extended": ABLATION_TITLES["extended"], "explorer": "Heatmap explorer",
         "walkthrough": "Multi-AD step by step",
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
    p.add_argument("--methods", nargs="+", default=[], metavar="NAME",
                   help="methods run beyond the profile's, e.g. a plugin's (same as "
                        "--profile PROFILE+NAME)")
    p.add_argument("--results", default="results")
    p.add_argument("--executed", type=Path, default=EXECUTED, metavar="DIR",
                   help="where the executed pages go (default: book/executed, the book's)")
    p.add_argument("--device", help="override the profile's device")
    p.add_argument("--timeout", type=int, help="seconds per notebook cell")
    p.add_argument("--concurrent", type=int, default=0, metavar="N",
                   help="runs trained together on one device, a step of the plan "
                        "(default: the profile's)")
    p.add_argument("--plan", action="store_true",
                   help="print the plan (steps, estimated time on this device, what is "
                        "finished) and stop")
    p.add_argument("--ray", default=os.environ.get("RAY_ADDRESS") or None, metavar="ADDRESS",
                   help="the Ray cluster to run the plan on (auto: the one this machine "
                        "belongs to; default: $RAY_ADDRESS, else a local instance; "
                        "in-process: no Ray, the steps one after the other here)")
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
    profile = "+".join([args.profile, *args.methods])
    return 1 if reproduce(profile, args.results, args.device, args.timeout,
                          executed_dir=args.executed, only=args.only,
                          concurrent=args.concurrent,
                          ray_address=args.ray, show_plan=args.plan) else 0


if __name__ == "__main__":
    raise SystemExit(main())
