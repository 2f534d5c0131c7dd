"""Where a benchmark's result goes: ``<out>/<device>_<kind>_<UTC stamp>.json``, written
atomically (the benchmark scripts run as ``python benchmarks/<script>.py``, which puts
this folder on the import path)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any


def write_result(res: dict[str, Any], out_dir: str | Path, kind: str) -> Path:
    """Write ``res`` (its ``device`` names the file) and return the path."""
    from multiad.atomic import write_json

    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    dev = re.sub(r"[^A-Za-z0-9]+", "-", res["device"]).strip("-")
    path = Path(out_dir) / f"{dev}_{kind}_{stamp}.json"
    write_json(path, res)
    print(f"wrote {path}")
    return path
