"""From samples to model input: decode once, resize, keep as uint8 tensors, normalise late.

Images are resized bilinearly with antialiasing, masks with nearest-neighbour
(``nearest-exact``, pixel-centre aligned like PIL), both to ``size``×``size``
(METHOD_SPEC §1). Decoded splits can be cached on disk, keyed by the absolute file paths,
their sizes and modification times and the target size, so a changed file is never served
from the cache; by default in a per-user cache folder (:func:`default_cache_dir`).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from tqdm import tqdm

from ..atomic import atomic_path
from ..torch_files import load_torch
from . import image_io
from .errors import DataError
from .samples import Sample

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CACHE_VERSION = 2  # 2: absolute paths in the key
RESIZE_METHOD = "image:bilinear-antialias,mask:nearest-exact"


_MEAN_STD: dict[tuple[torch.device, tuple[float, ...], tuple[float, ...]],
                tuple[torch.Tensor, torch.Tensor]] = {}


def _mean_std(device: torch.device, mean: Sequence[float], std: Sequence[float]
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """``mean`` and ``std`` as 3×1×1 float32 tensors on ``device``, made once: a fresh
    host-to-device copy per training step may wait for the GPU stream it is queued on."""
    key = (device, tuple(mean), tuple(std))
    if key not in _MEAN_STD:
        _MEAN_STD[key] = (torch.tensor(key[1]).view(3, 1, 1).to(device),
                          torch.tensor(key[2]).view(3, 1, 1).to(device))
    return _MEAN_STD[key]


def normalize(batch: torch.Tensor, mean: Sequence[float] = IMAGENET_MEAN,
              std: Sequence[float] = IMAGENET_STD) -> torch.Tensor:
    """uint8 (0..255) or float (0..1) images, (N×)3×H×W on any device → float32, normalised
    with the teacher's ``mean``/``std`` (ImageNet's by default; a backbone says its own)."""
    x = batch.float() / 255.0 if batch.dtype == torch.uint8 else batch.float()
    m, s = _mean_std(x.device, mean, std)
    return (x - m) / s


def denormalize(batch: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`normalize`, returning float images in [0, 1] (for display)."""
    shape = (3, 1, 1) if batch.dim() == 3 else (1, 3, 1, 1)
    mean = torch.tensor(IMAGENET_MEAN, dtype=batch.dtype, device=batch.device).view(shape)
    std = torch.tensor(IMAGENET_STD, dtype=batch.dtype, device=batch.device).view(shape)
    return (batch * std + mean).clamp(0, 1)


@dataclass
class LoadedSplit:
    """A decoded split: uint8 images N×3×S×S, bool masks N×S×S, long labels N."""

    images: torch.Tensor
    masks: torch.Tensor
    labels: torch.Tensor
    defects: list[str]
    paths: list[str]
    mask_paths: list[str | None]
    size: int

    def __len__(self) -> int:
        return len(self.paths)


def resize_image(image: np.ndarray, size: int) -> torch.Tensor:
    """Float H×W×3 in [0, 1] → uint8 3×size×size (bilinear, antialiased, rounded)."""
    t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).unsqueeze(0)
    if t.shape[-2:] != (size, size):
        t = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False,
                          antialias=True)
    return (t[0].clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)


def resize_mask(mask: np.ndarray, size: int) -> torch.Tensor:
    """Bool H×W → bool size×size (nearest-exact)."""
    t = torch.from_numpy(np.ascontiguousarray(mask)).to(torch.float32)[None, None]
    if t.shape[-2:] != (size, size):
        t = F.interpolate(t, size=(size, size), mode="nearest-exact")
    return t[0, 0] > 0.5


def default_cache_dir() -> Path:
    """Where decoded splits are cached: ``$MULTIAD_CACHE_DIR``, else the per-user cache
    folder (``$XDG_CACHE_HOME/multiad/splits``, ``~/.cache/multiad/splits`` on Linux).
    Datasets often sit on read-only or shared storage, so never in their own folder."""
    env = os.environ.get("MULTIAD_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_path

    return user_cache_path("multiad") / "splits"


def _stat(path: Path | None) -> list:
    if path is None:
        return [None]
    try:
        st = os.stat(path)
    except OSError as exc:
        raise DataError(f"Cannot access {path}: {exc}. Re-extract the dataset.") from exc
    return [os.path.abspath(path), st.st_size, st.st_mtime_ns]


def cache_key(samples: Sequence[Sample], size: int) -> str:
    """Hash of everything a decoded split depends on."""
    h = hashlib.sha256()
    h.update(json.dumps([CACHE_VERSION, RESIZE_METHOD, int(size)]).encode())
    for s in samples:
        regions = [_stat(p) for p in s.regions[1:]]  # [] unless several mask files (LOCO)
        h.update(json.dumps(_stat(s.image) + _stat(s.mask) + [s.label, s.defect]
                            + regions).encode())
    return h.hexdigest()[:32]


def _decode_into(s: Sample, i: int, size: int, images: torch.Tensor, masks: torch.Tensor
                 ) -> None:
    image = image_io.read_image(s.image)
    images[i] = resize_image(image, size)
    if s.mask is not None:
        mask = image_io.read_mask(s.mask)
        image_io.check_same_size(image, mask, s.image, s.mask)
        for path in s.regions[1:]:  # several region files: their union
            extra = image_io.read_mask(path)
            image_io.check_same_size(image, extra, s.image, path)
            mask |= extra
        masks[i] = resize_mask(mask, size)


def _load_cache(path: Path, n: int, size: int) -> LoadedSplit | None:
    try:
        blob = load_torch(path)
        split = LoadedSplit(**blob)
    except Exception:  # a corrupt or foreign cache file is simply rebuilt
        return None
    if len(split) != n or tuple(split.images.shape) != (n, 3, size, size):
        return None
    return split


def preload(samples: Sequence[Sample], size: int = 256, cache_dir: str | Path | None = None,
            progress: bool = True, *, num_workers: int | None = None,
            desc: str = "decode") -> LoadedSplit:
    """Decode, check and resize every sample once (thread pool), optionally cached on disk."""
    samples = list(samples)
    n = len(samples)
    cache_file = None
    if cache_dir is not None:
        cache_file = Path(cache_dir) / f"split-{cache_key(samples, size)}.pt"
        if cache_file.is_file():
            cached = _load_cache(cache_file, n, size)
            if cached is not None:
                return cached
    images = torch.zeros((n, 3, size, size), dtype=torch.uint8)
    masks = torch.zeros((n, size, size), dtype=torch.bool)
    workers = num_workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool, \
            tqdm(total=n, desc=desc, disable=not progress, leave=False) as bar:
        futures = [pool.submit(_decode_into, s, i, size, images, masks)
                   for i, s in enumerate(samples)]
        try:
            for fut in futures:
                fut.result()
                bar.update(1)
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise
    split = LoadedSplit(images=images, masks=masks,
                        labels=torch.tensor([s.label for s in samples], dtype=torch.long),
                        defects=[s.defect for s in samples],
                        paths=[str(s.image) for s in samples],
                        mask_paths=[None if s.mask is None else str(s.mask) for s in samples],
                        size=int(size))
    if cache_file is not None:
        try:
            with atomic_path(cache_file) as tmp:
                torch.save(split.__dict__, tmp)
        except OSError as exc:  # a full or read-only cache folder costs speed, not the run
            warnings.warn(f"could not cache the decoded split in {cache_file.parent} ({exc}); "
                          "set MULTIAD_CACHE_DIR or data.cache_dir to a writable folder",
                          stacklevel=2)
    return split


class SampleDataset(Dataset):
    """A torch Dataset over a :class:`LoadedSplit` (normalised float images, float masks)."""

    def __init__(self, split: LoadedSplit) -> None:
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> dict:
        s = self.split
        return {"image": normalize(s.images[index]),
                "mask": s.masks[index].unsqueeze(0).float(),
                "label": s.labels[index],
                "defect": s.defects[index],
                "path": s.paths[index],
                "index": index}
