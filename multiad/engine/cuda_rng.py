"""One CUDA random-number state per run, so that concurrent runs draw apart.

PyTorch's default CUDA generator holds a *state* (seed, Philox offset and, once a CUDA
graph is captured with it, the small device tensors a graph reads them from at each
replay). Up to torch 2.12 every graph captured with the same state shares those tensors:
replaying several runs' graphs on separate streams would let one run's dropout read the
seed and offset another run's replay has just written (later versions keep them per
capture). Giving each run its own state object — installed while the run queues work and
while its graph is captured — keeps its draws its own on every version: the same ones it
makes when trained alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


def default_cuda_generator(device: torch.device) -> torch.Generator:
    """The default CUDA generator of ``device`` (the one dropout draws from)."""
    if device.type != "cuda":
        raise ValueError(f"a CUDA RNG state needs a CUDA device, not {device}")
    torch.cuda.init()
    index = device.index if device.index is not None else torch.cuda.current_device()
    return torch.cuda.default_generators[index]


def own_cuda_rng(device: torch.device) -> torch.Generator:
    """A separate RNG state for one run, starting where the default generator is now."""
    return default_cuda_generator(device).clone_state()


@contextmanager
def using_cuda_rng(state: torch.Generator | None, device: torch.device) -> Iterator[None]:
    """Within the block, draws on ``device`` (and graphs captured there) use and advance
    ``state`` only; ``torch.cuda.get_rng_state``/``set_rng_state`` read and write it.
    ``None``: the default state, unchanged."""
    if state is None:
        yield
        return
    gen = default_cuda_generator(device)
    previous = gen.graphsafe_get_state()
    gen.graphsafe_set_state(state)
    try:
        yield
    finally:
        gen.graphsafe_set_state(previous)
