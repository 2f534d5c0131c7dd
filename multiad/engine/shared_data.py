"""What the runs of a group share on one device: a decoded training set, and the
teacher's features of it (``train.cache_teacher``), keyed by what they depend on. A set is
dropped as soon as no run left in the group needs it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch

from multiad.config import RunConfig
from multiad.data import load_split
from multiad.engine.teacher_cache import teacher_features
from multiad.engine.trainer import TrainerBase
from multiad.engine.validation import HeldOut
from multiad.provenance import select_device


def data_key(cfg: RunConfig) -> tuple[Any, ...]:
    """What a decoded training set depends on: the dataset, its size, the device."""
    d = cfg.data
    return (d.kind, d.root, d.category, d.image_size, d.cache_dir,
            str(select_device(cfg.train.device)))


@dataclass
class SharedTrainingSet:
    """A decoded training set on the device, and T's features of it, shared by the runs of a
    group that train on it (keyed by teacher, precision, layout and batch size)."""

    data: Any
    images: torch.Tensor
    teacher: dict[tuple[Any, ...], list[torch.Tensor] | None] = field(default_factory=dict)


def training_set(loaded: dict[tuple[Any, ...], SharedTrainingSet], cfg: RunConfig,
                 device: torch.device, progress: bool) -> SharedTrainingSet:
    """``cfg``'s training set from ``loaded``, decoded (and checked) on first use."""
    key = data_key(cfg)
    if key not in loaded:
        data, split = load_split(cfg.data, "train", progress, check=True)
        loaded[key] = SharedTrainingSet(data, split.images.to(device) if device.type == "cuda"
                                        else split.images)
    return loaded[key]


def cached_teacher_features(shared: SharedTrainingSet, trainer: TrainerBase,
                            images: torch.Tensor, held: HeldOut | None, progress: bool
                            ) -> list[torch.Tensor] | None:
    """T's features of ``images`` as the method's step takes them, computed once per key
    (None when they would not fit in memory)."""
    t = trainer.cfg.train
    key = (*trainer.teacher_cache_key(), t.amp, t.channels_last, t.batch_size, t.holdout,
           t.seed if held is not None else None)  # which images are trained
    if key not in shared.teacher:
        shared.teacher[key] = teacher_features(trainer, images, progress)
    return shared.teacher[key]


def release_unneeded(loaded: dict[tuple[Any, ...], SharedTrainingSet],
                     still: Iterable[RunConfig]) -> None:
    """Drop the training sets no run of ``still`` needs."""
    needed = {data_key(c) for c in still}
    for key in set(loaded) - needed:
        del loaded[key]
