"""Where a benchmark's result goes: ``<out>/<device>_<kind>_<UTC stamp>.json``, written
atomically (the benchmark scripts run as ``python benchmarks/<script>.py``, which puts
this folder on the import path)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any


def result_path(res: dict[str, Any], out_dir: str | Path, kind: str) -> Path:
    """The file ``res`` goes to (its ``device`` names it), stamped now: a benchmark that
    rewrites its file after every part keeps what it measured if it is stopped."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    dev = re.sub(r"[^A-Za-z0-9]+", "-", res["device"]).strip("-")
    return Path(out_dir) / f"{dev}_{kind}_{stamp}.json"


def write_result(res: dict[str, Any], out_dir: str | Path, kind: str,
                 path: Path | None = None) -> Path:
    """Write ``res`` (to ``path``, or a new :func:`result_path`) and return the path."""
    from multiad.atomic import write_json

    path = path or result_path(res, out_dir, kind)
    write_json(path, res)
    print(f"wrote {path}")
    return path
