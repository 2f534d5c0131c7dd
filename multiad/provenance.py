"""How a result was made: versions, commit, device, time. Stored with every result."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import torch

import multiad

_REPO = Path(__file__).resolve().parent.parent


def git_commit() -> dict[str, Any]:
    """The package checkout's commit and whether it had uncommitted changes.

    ``MULTIAD_COMMIT`` wins when set: a copy of the tree on another machine may carry no
    ``.git``, or a stale one, and the person who copied it knows the commit.
    """
    if os.environ.get("MULTIAD_COMMIT"):
        return {"commit": os.environ["MULTIAD_COMMIT"], "dirty": None}

    def run(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=_REPO, capture_output=True, text=True,
                                 timeout=10, check=True)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip()

    commit = run("rev-parse", "HEAD")
    if commit is None:  # a copy of the tree without .git
        return {"commit": None, "dirty": None}
    status = run("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status)}


def select_device(name: str = "auto") -> torch.device:
    """"auto" → the first CUDA device when present, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} requested but CUDA is not available; use --device "
                           "cpu or auto")
    return dev


def device_info(device: torch.device) -> dict[str, Any]:
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return {"type": "cuda", "name": props.name,
                "memory_gib": round(props.total_memory / 2**30, 1),
                "cuda": torch.version.cuda}
    return {"type": device.type, "name": cpu_name(), "threads": torch.get_num_threads(),
            "cores": os.cpu_count()}


def cpu_name() -> str:
    """The processor's model name (Linux: /proc/cpuinfo), else its architecture."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance(device: torch.device | None = None) -> dict[str, Any]:
    """Package version, git commit, library versions, device and a UTC timestamp."""
    import numpy
    import torchvision

    out: dict[str, Any] = {
        "multiad": multiad.__version__,
        **git_commit(),
        "python": platform.python_version(),
        "torch": str(torch.__version__),  # a str subclass: plain data
        "torchvision": str(torchvision.__version__),
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if device is not None:
        out["device"] = device_info(device)
    return out
