"""The one interface every method answers through (evaluation, ``predict``, the figures,
the explorer and the tables need nothing else).

- :class:`AnomalyOutput`: for a batch, the method's own layer maps at their native
  resolution, their combination at the input size, its Gaussian smoothing and the image
  scores. All float32.
- :class:`InferenceModel`: a trained or fitted method in evaluation mode: ``predict``, and
  the teacher whose normalisation its input takes.
- :class:`MethodSpec`: a method described by data — its name, whether it is *trained*
  (epochs of optimiser steps) or *fitted* (one pass over normal features), its reference
  backbone and schedule, and the module that builds it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Protocol

import torch

from multiad.backbones import FrozenBackbone


@dataclass
class AnomalyOutput:
    """What a method says about a batch."""

    layer_maps: list[torch.Tensor]  # the method's own maps, N×1×h_n×w_n (native resolution)
    fused: torch.Tensor  # N×H×W: the layer maps combined at the input size
    smoothed: torch.Tensor  # N×H×W: the anomaly map (fused, Gaussian-smoothed)
    score: torch.Tensor  # N: the image scores


class InferenceModel(Protocol):
    """A method ready to evaluate (what ``multiad.methods.load`` returns)."""

    teacher: FrozenBackbone  # its input is normalised with the teacher's mean/std

    def predict(self, x: torch.Tensor) -> AnomalyOutput: ...

    def eval(self) -> Any: ...

    def to(self, *args: Any, **kwargs: Any) -> Any: ...


# rebuilds the smoothed map of stored layer maps (N×1×h×w each) at an input size
MapCombiner = Callable[[Sequence[torch.Tensor], tuple[int, int]], torch.Tensor]


@dataclass(frozen=True)
class MethodSpec:
    """A method, described by data."""

    name: str  # --method NAME
    title: str  # as the paper's tables name it
    kind: str  # "trained" or "fitted"
    backbone: str  # its reference teacher (multiad.backbones)
    module: str  # the module with its `build`, `load` and `combiner`
    section: str  # its settings' section of the run configuration
    layer_names: tuple[str, ...]  # its layer maps, as the explorer and figures label them
    schedule: dict[str, Any] = field(default_factory=dict)  # reference epochs, batch, lr…
    reference: str = ""  # paper and reference code
    # switches of its section that act after training only: a trained run is evaluated
    # under each of them without training again (Multi-AD's Ψ on/off, its ReLU, fusion, σ)
    eval_only_keys: tuple[str, ...] = ()

    @property
    def trained(self) -> bool:
        return self.kind == "trained"

    def impl(self) -> ModuleType:
        """The method's module (imported on first use)."""
        return importlib.import_module(self.module)
