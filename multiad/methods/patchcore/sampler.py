"""PatchCore's coreset: approximate greedy subsampling in a random projection (paper §3.2,
Algorithm 1; reference ``sampler.py``, ``ApproximateGreedyCoresetSampler``).

The features are projected to ``projection_dim`` by a random linear map (a bias-free
``nn.Linear`` as initialised by torch, as the reference). Every feature starts with the mean
of its distances to ``start_points`` random features; then, ``fraction``·N times, the
feature farthest from what is selected is added and every feature's distance becomes the
minimum of its own and its distance to the new one. Memory: N distances, never N×N (the
exact greedy search, the reference's other sampler, tried to allocate 107 GB: issue #38).
"""

from __future__ import annotations

import torch
from tqdm.auto import tqdm


def project(features: torch.Tensor, dim: int, generator: torch.Generator) -> torch.Tensor:
    """``features`` through a random bias-free linear map to ``dim`` (unchanged if they
    already have ``dim`` columns), drawn like ``nn.Linear``'s default initialisation."""
    if features.shape[1] == dim:
        return features
    bound = 1.0 / features.shape[1] ** 0.5  # kaiming_uniform(a=√5) of a Linear layer
    weight = torch.empty(dim, features.shape[1]).uniform_(-bound, bound, generator=generator)
    return features @ weight.to(features.device).t()


def _distances(features: torch.Tensor, to: torch.Tensor) -> torch.Tensor:
    """Euclidean distances N×M (the reference's ``(a² + b² − 2ab)`` clamped, then √)."""
    a = (features * features).sum(1, keepdim=True)
    b = (to * to).sum(1)[None]
    return (a + b - 2 * features @ to.t()).clamp_min(0).sqrt()


def greedy_coreset(features: torch.Tensor, fraction: float, projection_dim: int,
                   start_points: int, seed: int, progress: bool = True) -> torch.Tensor:
    """Indices of the approximate greedy coreset of ``features`` (N×D), in selection order."""
    n = len(features)
    count = max(1, int(n * fraction))
    g = torch.Generator().manual_seed(seed)
    reduced = project(features.float(), projection_dim, g)
    starts = torch.randperm(n, generator=g)[:min(start_points, n)].to(features.device)
    nearest = _distances(reduced, reduced[starts]).mean(dim=1)
    sq = (reduced * reduced).sum(1)  # |f|², once: each step is then one matrix-vector product
    chosen = torch.empty(count, dtype=torch.long, device=features.device)
    for i in tqdm(range(count), desc="coreset", disable=not progress, leave=False):
        idx = torch.argmax(nearest)
        chosen[i] = idx
        dist = (sq + sq[idx] - 2 * (reduced @ reduced[idx])).clamp_min(0).sqrt()
        nearest = torch.minimum(nearest, dist)
    return chosen
