"""A configured dataset's split, decoded: ``load_split(cfg.data, "train")``."""

from __future__ import annotations

from ..config import DataConfig
from .preflight import preflight
from .registry import load_dataset
from .samples import AnomalyData
from .tensors import LoadedSplit, default_cache_dir, preload


def load_split(cfg: DataConfig, which: str = "train", progress: bool = True,
               check: bool = False) -> tuple[AnomalyData, LoadedSplit]:
    """The dataset ``cfg`` describes and its ``train`` or ``test`` split decoded at
    ``cfg.image_size``, through the on-disk cache (``cfg.cache_dir``, by default
    :func:`default_cache_dir`). ``check``: the whole dataset's masks and image sizes are
    checked first (:func:`multiad.data.preflight.preflight`), as before a training."""
    data = load_dataset(cfg.kind, cfg.root, cfg.category)
    if check:
        preflight(data)
    cache = cfg.cache_dir or str(default_cache_dir())
    split = preload(getattr(data, which), size=cfg.image_size, cache_dir=cache,
                    progress=progress)
    return data, split
