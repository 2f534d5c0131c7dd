"""What the command line says about a user's mistake or the machine's state: one line
with the fix and exit code 2, no traceback (``--debug`` shows it). Anything else is a bug
and keeps its traceback."""

from __future__ import annotations

import errno
from pathlib import Path

import yaml

from multiad.backbones import WeightsError
from multiad.config import RunConfigMismatch
from multiad.engine.run_lock import RunFolderBusy

USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,  # bad settings, data (DataError), unsafe files, folders that are not runs
    OSError,  # paths, permissions, full disks, symbolic-link loops
    WeightsError, RunConfigMismatch, RunFolderBusy, yaml.YAMLError)
_PACKAGE = str(Path(__file__).resolve().parent)


def is_user_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a user's mistake or the machine's state (one line) rather than a
    bug (a traceback). A ``ValueError`` counts only when multiad raised it with its message
    for the user; one from inside torch or numpy is a bug of ours."""
    if not isinstance(exc, USER_ERRORS):
        return False
    if isinstance(exc, ValueError):
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        return tb is None or tb.tb_frame.f_code.co_filename.startswith(_PACKAGE)
    return True


_ADVICE = {
    errno.ENOSPC: "the disk is full. Free space there or choose another --out; files "
                  "already written are complete (they are written atomically)",
    errno.EDQUOT: "the disk quota is used up. Free space or choose another --out",
    errno.ELOOP: "a symbolic link there points back into itself (a loop). Remove or fix the "
                 "link",
    errno.ENOTDIR: "a part of this path is a file, not a folder. Choose another path",
    errno.EACCES: "permission denied. Choose a folder you may write, or fix its permissions",
    errno.EROFS: "the file system is read-only. Choose a writable folder",
    errno.ENOENT: "no such file or folder. Check the path",
}


def user_message(exc: BaseException) -> str:
    """One line for ``exc``: the file it concerns, what is wrong and the fix."""
    if isinstance(exc, OSError) and exc.errno in _ADVICE:
        where = exc.filename or ""
        return f"{where}: {_ADVICE[exc.errno]}" if where else _ADVICE[exc.errno]
    if isinstance(exc, yaml.YAMLError):
        return f"not plain YAML ({str(exc).splitlines()[0]}); values are plain YAML only"
    return str(exc)
