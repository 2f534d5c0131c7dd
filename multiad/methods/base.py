"""The one interface every method answers through (evaluation, ``predict``, the figures,
the explorer and the tables need nothing else).

- :class:`AnomalyOutput`: for a batch, the method's own layer maps at their native
  resolution, their combination at the input size, its Gaussian smoothing and the image
  scores. All float32.
- :class:`InferenceModel`: a trained or fitted method in evaluation mode: ``predict``, and
  the teacher whose normalisation its input takes.

A method declares itself through :class:`multiad.methods.contract.Method`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
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
