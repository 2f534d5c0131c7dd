"""A run folder is marked and locked: multiad writes only into folders it made, and one
process at a time.

- **Marker.** ``.multiad-run`` (JSON) says a folder is a run folder. A new or empty folder
  becomes one; a folder written by an earlier multiad (only run files) is recognised and
  marked; any other non-empty folder is refused (:class:`NotARunFolder`), so ``--out``
  never writes among, or ``--fresh`` never deletes, a user's files.
- **Lock.** A process holds an exclusive OS lock (``flock``) on ``.multiad-run.lock`` for as
  long as it writes the folder. The OS drops it when the process ends, however it ends,
  so a killed run leaves no stale lock. A second process gets :class:`RunFolderBusy`,
  naming the holder (pid, host, command, since). POSIX systems (Linux, macOS).
- **Fresh start.** :func:`clear_run_files` removes the run's own files only (those in
  :data:`RUN_ENTRIES`), never the marker or the lock.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import sys
import time
from pathlib import Path
from types import TracebackType

MARKER = ".multiad-run"
LOCK = ".multiad-run.lock"
# what a run folder holds: training (run_folder.py), evaluation (evaluate.py), the marker
RUN_ENTRIES = ("config.yaml", "checkpoint.pt", "model.pt", "losses.csv", "train.json",
               "metrics.json", "per_image.csv", "maps.npz", "explorer.npz", "heatmaps",
               MARKER, LOCK)


class NotARunFolder(ValueError):
    """A non-empty folder that multiad did not make: never written into or cleared."""


class RunFolderBusy(RuntimeError):
    """Another process holds the run folder's lock."""


def _is_run_entry(name: str) -> bool:
    # atomic writes leave ``.name.XXXX.tmp`` only while they write (or after a kill)
    return name in RUN_ENTRIES or (name.startswith(".") and name.endswith(".tmp"))


def is_run_folder(path: str | Path) -> bool:
    """True for a folder multiad marked, or one an earlier version wrote (nothing but run
    files: a training's, or an evaluation's alone, as an ablation cell's)."""
    path = Path(path)
    if (path / MARKER).is_file():
        return True
    if not path.is_dir():
        return False
    names = [p.name for p in path.iterdir()]
    return bool(names) and all(_is_run_entry(n) for n in names)


def claim_run_folder(path: str | Path) -> Path:
    """Make ``path`` a run folder (creating it) or confirm it is one; refuse a non-empty
    folder of other files, naming a few of them."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotARunFolder(f"{path}: exists and is not a folder; choose another --out")
    if path.is_dir() and any(path.iterdir()) and not is_run_folder(path):
        foreign = sorted(p.name for p in path.iterdir() if not _is_run_entry(p.name))
        shown = ", ".join(foreign[:4]) + (" …" if len(foreign) > 4 else "")
        raise NotARunFolder(
            f"{path}: not a run folder (it holds files multiad did not write: {shown}); "
            "multiad neither writes into nor deletes such a folder. Choose a new or "
            "empty --out")
    path.mkdir(parents=True, exist_ok=True)
    marker = path / MARKER
    if not marker.is_file():
        from multiad.atomic import write_json

        write_json(marker, {"multiad_run_folder": 1,
                            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    return path


def clear_run_files(path: str | Path) -> None:
    """Remove a run's own files (a fresh start); the marker, the lock and anything else
    stay. Only call with the folder's lock held."""
    path = Path(path)
    if not is_run_folder(path):
        raise NotARunFolder(f"{path}: not a run folder; nothing removed")
    for entry in path.iterdir():
        if entry.name in (MARKER, LOCK) or not _is_run_entry(entry.name):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


class RunLock:
    """The exclusive lock of one run folder while this process writes it::

        with RunLock(run_dir, "train"):
            ...

    Acquiring never waits: a held lock raises :class:`RunFolderBusy` at once."""

    def __init__(self, path: str | Path, purpose: str) -> None:
        self.dir = Path(path)
        self.purpose = purpose
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> RunLock:
        if self._fd is not None:
            return self
        fd = os.open(self.dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)  # never truncated here
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise RunFolderBusy(
                f"{self.dir}: another multiad process is writing this run folder ({holder}). "
                "Wait for it to finish, or stop it, or choose another --out") from None
        except BaseException:
            os.close(fd)
            raise
        info = {"pid": os.getpid(), "host": socket.gethostname(), "purpose": self.purpose,
                "command": " ".join(sys.argv)[:300],
                "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the descriptor drops the flock

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()

    def __del__(self) -> None:
        self.release()


def is_locked(path: str | Path) -> bool:
    """True while some process writes the run folder ``path`` (a reader's check)."""
    lock = Path(path) / LOCK
    if not lock.is_file():
        return False
    fd = os.open(lock, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return (f"pid {info['pid']} on {info['host']}, {info['purpose']} since "
                f"{info['since']}: {info['command']}")
    except (ValueError, KeyError, OSError):
        return "holder unknown"
