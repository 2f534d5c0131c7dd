"""Nearest-neighbour search of patch features in the memory bank (paper §3.3).

Exact brute force with ``torch.cdist`` in chunks of queries (on the GPU when the features
are there), squared Euclidean distances as faiss's ``IndexFlatL2`` returns them to the
reference; a patch's score is the mean of its ``k`` smallest. The reference's faiss is an
exact search too; results changed with its versions (reference issue #49), so this one is
tested against a direct computation.
"""

from __future__ import annotations

import torch


def nearest_distances(queries: torch.Tensor, bank: torch.Tensor, k: int = 1,
                      chunk: int = 4096) -> torch.Tensor:
    """Mean of the ``k`` smallest squared L2 distances of every query to ``bank``. Q."""
    out = torch.empty(len(queries), device=queries.device)
    for i in range(0, len(queries), chunk):
        d = torch.cdist(queries[i:i + chunk].float(), bank.float()).square()
        out[i:i + chunk] = d.topk(k, dim=1, largest=False).values.mean(dim=1)
    return out
