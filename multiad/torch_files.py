"""Tensor files (``model.pt``, ``checkpoint.pt``, caches): data, never code.

Every file the package writes holds plain containers (dict, list, tuple), numbers,
strings and tensors only, so :func:`load_torch` reads it with PyTorch's safe loader
(``weights_only=True``) and no pickled object of a downloaded run folder can run code.
A file that the safe loader refuses is named in a :class:`UnsafeFile` error and is not
unpickled. Run folders written by multiad 0.1 stored torch's version as an object
(``torch.torch_version.TorchVersion``, a ``str`` subclass); ``multiad upgrade-run RUN``
rewrites them as plain strings, reading them with the same safe loader and that one class
allowed (:func:`upgrade_file`).
"""

from __future__ import annotations

import io
import os
import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from multiad.atomic import atomic_write

# the one non-container type earlier versions wrote (provenance's torch version)
_EARLIER_GLOBALS = ("torch.torch_version.TorchVersion",)


class UnsafeFile(ValueError):
    """A tensor file that the safe loader will not read (it would have to unpickle code)."""


def plain(obj: Any, where: str = "") -> Any:
    """``obj`` as the safe loader reads it back: str/int/float/bool subclasses, paths and
    NumPy scalars become the plain values; anything else that is not a container or a
    tensor is a bug of the writer and raises ``TypeError``."""
    if isinstance(obj, (torch.Tensor, torch.Size, torch.dtype, torch.device)) or obj is None:
        return obj
    if isinstance(obj, bool):
        return bool(obj)
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj)
    if isinstance(obj, dict):
        return {plain(k, where): plain(v, f"{where}/{k}") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        items = [plain(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        return items if isinstance(obj, list) else tuple(items)
    raise TypeError(f"{where or 'object'}: {type(obj).__name__} is not plain data; a tensor "
                    "file holds containers, numbers, strings and tensors only")


def save_torch(path: str | os.PathLike[str], obj: Any) -> Path:
    """``torch.save`` of :func:`plain` data, atomically (complete on disk or absent)."""
    buf = io.BytesIO()
    torch.save(plain(obj), buf)
    return atomic_write(path, lambda fh: fh.write(buf.getbuffer()), binary=True)


def load_torch(path: str | os.PathLike[str], map_location: Any = "cpu") -> Any:
    """Read a tensor file with the safe loader; :class:`UnsafeFile` names a file that holds
    more than data (and says how to convert one written by an earlier multiad)."""
    path = Path(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise _refused(path, exc) from None
    except (RuntimeError, EOFError) as exc:  # not a torch file, or a truncated one
        raise UnsafeFile(f"{path}: not a readable PyTorch file ({_first_line(exc)}); "
                         "delete it or copy it again from its source") from None


def upgrade_file(path: str | os.PathLike[str]) -> bool:
    """Rewrite a tensor file of an earlier multiad as plain data; True when it changed.
    Read with the safe loader and only :data:`_EARLIER_GLOBALS` allowed: a file holding
    anything else is refused as by :func:`load_torch`."""
    path = Path(path)
    try:
        torch.load(path, map_location="cpu", weights_only=True)
        return False  # already plain
    except pickle.UnpicklingError:
        pass
    from torch.torch_version import TorchVersion

    try:
        with torch.serialization.safe_globals([TorchVersion]):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise _refused(path, exc) from None
    save_torch(path, obj)
    return True


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def _refused(path: Path, exc: BaseException) -> UnsafeFile:
    text = str(exc)
    if any(name in text for name in _EARLIER_GLOBALS):
        return UnsafeFile(
            f"{path}: written by an earlier multiad (it stores torch's version as an object). "
            f"It is not unpickled; convert it once with: multiad upgrade-run {path.parent} "
            "(or a folder of runs, e.g. multiad upgrade-run results/)")
    found = re.search(r"GLOBAL ([\w.]+)", text)
    what = f" ({found.group(1)})" if found else ""
    return UnsafeFile(
        f"{path}: holds Python objects beyond tensors and plain data{what}; multiad will not "
        "unpickle it, since unpickling can run any code. Use run folders written by multiad, "
        "or re-train")
