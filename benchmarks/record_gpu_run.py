"""Turn what `gpu_reproduce.sh` brought back into a record under ``benchmarks/gpu_runs/``.

    python benchmarks/record_gpu_run.py FILES_DIR [--note TEXT] [--out benchmarks/gpu_runs]

FILES_DIR holds ``reproduce.log``, ``results.tgz`` and, when the CUDA tests ran,
``pytest.log``. The record says which notebooks ran (from the log: ok, failed, or not
reached before the run stopped), the CUDA tests' summary line, and every run's metrics,
where it was trained and its wall times (from the runs' own ``metrics.json``, whose
provenance names the device, torch and commit). The book's compute page renders it.
"""

from __future__ import annotations

import argparse
import json
import re
import tarfile
from pathlib import Path
from typing import Any

from multiad.atomic import write_json

PROGRESS = re.compile(r"^(profile |plan|\[notebook |\[page |\[\d)")  # plan steps, pages
NOTEBOOK = re.compile(r"^\[(?:notebook|page) (\d+)/(\d+) [^\]]*\] ([\w-]+)")
FAILED = re.compile(r"^\s+FAILED ([\w-]+)\.ipynb: (.*)$")
STATUS = re.compile(r"^reproduce exit status (\d+) after (\d+) s")
PAPERMILL = re.compile(r"papermill (\S+)")
# pytest's last line: "3 passed, 1 skipped in 9.1s", "no tests ran in 0.1s"
SUMMARY = re.compile(r"^=*\s*(\d+ (passed|failed|errors?|skipped|deselected|xfailed|xpassed|"
                     r"warnings?)(, )?)+ in [\d.]+s|no tests ran")
TOP_FOLDERS = ("runs", "ablation", "trained")  # what a profile's results folder holds


def notebook_results(log: list[str]) -> tuple[dict[str, str], int | None, str | None]:
    """Each notebook's outcome, the wall seconds and papermill's version, from the log."""
    pages: dict[str, str] = {}
    total, wall, status, papermill = 0, None, None, None
    for line in log:
        if m := NOTEBOOK.match(line):
            total = int(m.group(2))
            pages[m.group(3)] = "ok"
        elif m := FAILED.match(line):
            pages[m.group(1)] = f"failed: {m.group(2)}"
        elif m := STATUS.match(line):
            status, wall = int(m.group(1)), int(m.group(2))
        elif papermill is None and (m := PAPERMILL.search(line)):
            papermill = m.group(1)
    finished = any(line.startswith("profile ") and " finished in " in line for line in log)
    if pages and not finished:  # the last notebook started did not finish
        last = list(pages)[-1]
        if pages[last] == "ok":
            pages[last] = ("stopped before it finished (time limit)" if status in (124, 137)
                           else f"stopped before it finished (exit status {status})")
    if total and len(pages) < total:
        pages["(not reached)"] = f"{total - len(pages)} notebook(s)"
    return pages, wall, papermill


def _within_profile(path: str, profile: str) -> str:
    """``…/results/<profile>/runs/x/seed0`` → ``runs/x/seed0`` (likewise ablation/, trained/)."""
    parts = Path(path).parts
    if profile in parts[:-1]:
        return "/".join(parts[len(parts) - parts[::-1].index(profile):])
    top = next((i for i, part in enumerate(parts) if part in TOP_FOLDERS), 0)
    return "/".join(parts[top:])


def run_rows(results_tgz: Path, profile: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One row per evaluated run, and the provenance of the first one."""
    rows, prov = [], {}
    with tarfile.open(results_tgz) as tar:
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            if not member.name.endswith("/metrics.json"):
                continue
            fh = tar.extractfile(member)
            if fh is None:
                continue
            d = json.loads(fh.read())
            # the folder holding the file: an ablation row that reuses the main run keeps a
            # copy of its metrics there (its "run" names the main run)
            run = _within_profile(member.name.rsplit("/", 1)[0], profile)
            trained = _within_profile(d.get("trained_in") or "", profile)
            rows.append({"cell": run,
                         "image_auroc": d["metrics"]["image_auroc"],
                         "pixel_auroc": d["metrics"]["pixel_auroc"],
                         "trained_in": None if trained in ("", run) else trained,
                         "train_wall_s": d.get("train_wall_s"),
                         "eval_wall_s": d.get("eval_wall_s")})
            prov = prov or d.get("provenance", {})
    return rows, prov


def record(files: Path, note: str = "") -> dict[str, Any]:
    log = (files / "reproduce.log").read_text(errors="replace").splitlines()
    pages, wall, papermill = notebook_results(log)
    profile = next((ln.split()[1].rstrip(":") for ln in log if ln.startswith("profile ")),
                   "unknown")
    rows, prov = run_rows(files / "results.tgz", profile)
    # gpu_reproduce.sh's own test run, else that of `gpu_session.sh tests` in the same files
    # (`gpu_session.sh all` runs pytest twice into it: every run's summary line counts)
    tests = next((files / n for n in ("pytest.log", "pytest_cuda.log") if (files / n).exists()),
                 None)
    summary = None
    if tests is not None:
        lines = [ln.strip("= ") for ln in tests.read_text(errors="replace").splitlines()
                 if SUMMARY.search(ln)]
        summary = "; ".join(lines) if lines else None
    dev = prov.get("device", {})
    return {"what": f"make reproduce PROFILE={profile} through papermill on a GPU machine "
                    "without a Jupyter stack (wheels carried, benchmarks/gpu_reproduce.sh)",
            "device": dev.get("name") if isinstance(dev, dict) else dev,
            "torch": prov.get("torch"), "papermill": papermill,
            "commit": (prov.get("commit") or "")[:7] or None,
            "date": (prov.get("utc") or "")[:10] or None,
            "cuda_tests": summary or "not run in this call",
            "notebooks": pages,
            "profile": profile,
            "progress_log": [ln for ln in log if PROGRESS.match(ln)],
            "wall_s": wall, "note": note, "runs": rows}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", type=Path)
    p.add_argument("--note", default="")
    p.add_argument("--out", type=Path, default=Path("benchmarks/gpu_runs"))
    args = p.parse_args(argv)
    rec = record(args.files, args.note)
    name = re.sub(r"[^A-Za-z0-9]+", "-", rec["device"] or "unknown").strip("-")
    path = args.out / f"{name}_{(rec['date'] or 'undated').replace('-', '')}_{rec['profile']}.json"
    write_json(path, rec)
    print(f"wrote {path}: {len(rec['runs'])} runs, notebooks {rec['notebooks']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
