"""Finding, verifying and describing the teacher's ImageNet weights (METHOD_SPEC §2).

Order of search for ``weights="imagenet"``:
1. ``$MULTIAD_TEACHER_WEIGHTS`` (a file path), if set;
2. torchvision's cache, ``<torch hub dir>/checkpoints/wide_resnet50_2-95faca4d.pth``;
3. a download from download.pytorch.org into that cache (skipped when
   ``$MULTIAD_OFFLINE=1``).
Any file is checked against torchvision's published SHA-256 prefix ``95faca4d``.
``weights="random"`` (or ``None``) gives a seeded random teacher, recorded as such.
``weights="auto"`` (the demo's choice) is "imagenet" when the file can be had and
"random", with a loud warning, when it cannot.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

WEIGHTS_URL = "https://download.pytorch.org/models/wide_resnet50_2-95faca4d.pth"
WEIGHTS_FILE = "wide_resnet50_2-95faca4d.pth"
SHA256_PREFIX = "95faca4d"
RANDOM_TEACHER_SEED = 0


class TeacherWeightsError(RuntimeError):
    """The pretrained teacher weights are missing or corrupt."""


@dataclass(frozen=True)
class TeacherWeights:
    """Where the teacher's weights came from; stored in every result."""

    kind: str  # "imagenet" or "random"
    path: Path | None = None
    sha256: str | None = None
    random_seed: int = RANDOM_TEACHER_SEED

    @property
    def is_random(self) -> bool:
        return self.kind == "random"

    def describe(self) -> dict[str, str | int | None]:
        d = asdict(self)
        d["path"] = str(self.path) if self.path else None
        if self.is_random:
            d["warning"] = ("RANDOM TEACHER: not ImageNet-pretrained; results are not "
                            "comparable with the paper")
        return d


def default_cache_path() -> Path:
    """torchvision's cache location for the WRN-50-2 ImageNet file."""
    return Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILE


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify(path: Path) -> str:
    """Return the file's SHA-256, or raise if it is not torchvision's IMAGENET1K_V1 file."""
    digest = sha256_of(path)
    if not digest.startswith(SHA256_PREFIX):
        raise TeacherWeightsError(
            f"{path}: SHA-256 {digest[:16]}… does not start with {SHA256_PREFIX}; this is not "
            f"torchvision's wide_resnet50_2 IMAGENET1K_V1 file (a partial download or timm's "
            f"different checkpoint?). Delete it and fetch {WEIGHTS_URL} again.")
    return digest


def _missing_message(cache: Path) -> str:
    return (
        "The ImageNet teacher weights are not available and could not be downloaded.\n"
        f"  Put the file {WEIGHTS_FILE} (from {WEIGHTS_URL}) at\n    {cache}\n"
        "  or point MULTIAD_TEACHER_WEIGHTS (or --teacher-weights) at it.\n"
        "  For tests and the embedded demo only, a random teacher can be requested "
        "explicitly with --teacher-weights random.")


def resolve_teacher_weights(weights: str | os.PathLike[str] | None = "imagenet",
                            allow_download: bool | None = None) -> TeacherWeights:
    """Resolve a weights request ("imagenet", "random"/None, or a file path)."""
    if weights is None or str(weights) == "random":
        return TeacherWeights(kind="random")
    if str(weights) == "auto":
        try:
            return resolve_teacher_weights("imagenet", allow_download)
        except TeacherWeightsError as exc:
            warnings.warn(f"{exc}\nFalling back to a RANDOM teacher (teacher_weights=auto): "
                          "results will say so and are not comparable with the paper.",
                          stacklevel=2)
            return TeacherWeights(kind="random")
    if allow_download is None:
        allow_download = os.environ.get("MULTIAD_OFFLINE", "0") != "1"
    if str(weights) != "imagenet":
        path = Path(weights).expanduser()
        if not path.is_file():
            raise TeacherWeightsError(f"{path}: no such file.\n" + _missing_message(path))
        return TeacherWeights(kind="imagenet", path=path, sha256=verify(path))
    env = os.environ.get("MULTIAD_TEACHER_WEIGHTS")
    if env:
        return resolve_teacher_weights(env, allow_download=False)
    cache = default_cache_path()
    if not cache.is_file() and allow_download:
        cache.parent.mkdir(parents=True, exist_ok=True)
        try:
            torch.hub.download_url_to_file(WEIGHTS_URL, str(cache), hash_prefix=SHA256_PREFIX,
                                           progress=True)
        except Exception as exc:  # network errors come in many types
            raise TeacherWeightsError(f"download failed ({exc}).\n"
                                      + _missing_message(cache)) from exc
    if not cache.is_file():
        raise TeacherWeightsError(_missing_message(cache))
    return TeacherWeights(kind="imagenet", path=cache, sha256=verify(cache))


def teacher_available() -> bool:
    """True when the ImageNet weights can be had without a download."""
    try:
        resolve_teacher_weights("imagenet", allow_download=False)
    except TeacherWeightsError:
        return False
    return True
