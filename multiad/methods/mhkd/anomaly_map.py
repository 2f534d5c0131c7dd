"""MHKD's anomaly maps and score (paper §III-C, Eq. 9; reference ``predict``,
``map_normalization``, ``test``).

- structural map A_s = mean over channels of (f_t − f_s)², logical map A_g = mean over
  channels of (f_g − f_l)² (the difference between SEncoder1 and the GDecoder), on the
  teacher's grid;
- each normalised linearly so that its ``q_start`` and ``q_end`` quantiles over all pixels
  of the validation images' maps go to 0 and 0.1 (EfficientAD's rule; 0.9 and 0.995);
- A = 0.5·A_s + 0.5·A_g; the image score is A's maximum on the teacher's grid;
- the pixel map is A bilinearly upsampled to the input size and Gaussian-smoothed
  (σ = 2, as the reference's saved maps).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from multiad.methods.common import upsample


def branch_maps(f_t: torch.Tensor, f_l: torch.Tensor, f_g: torch.Tensor, f_s: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """(A_s, A_g), N×1×h×w each, float32."""
    a_s = ((f_t.float() - f_s.float()) ** 2).mean(dim=1, keepdim=True)
    a_g = ((f_g.float() - f_l.float()) ** 2).mean(dim=1, keepdim=True)
    return a_s, a_g


def quantiles(maps: torch.Tensor, q_start: float, q_end: float) -> tuple[float, float]:
    """The ``q_start`` and ``q_end`` quantiles of all values of ``maps`` (exact: a sort,
    linear interpolation, as ``torch.quantile``; no 16-million-element limit)."""
    v = maps.detach().flatten().double().sort().values
    out = []
    for q in (q_start, q_end):
        pos = q * (len(v) - 1)
        lo = int(pos)
        hi = min(lo + 1, len(v) - 1)
        out.append(float(v[lo] + (v[hi] - v[lo]) * (pos - lo)))
    return out[0], out[1]


def normalise(m: torch.Tensor, q: Sequence[float]) -> torch.Tensor:
    """0.1·(m − q_a)/(q_b − q_a) (Eq. 9's linear transformation)."""
    q_a, q_b = q
    return 0.1 * (m - q_a) / max(q_b - q_a, 1e-12)


def combined_map(maps: Sequence[torch.Tensor]) -> torch.Tensor:
    """A = 0.5·A_s + 0.5·A_g of the normalised branch maps, N×1×h×w."""
    a_s, a_g = maps
    return 0.5 * a_s + 0.5 * a_g


def pixel_map(maps: Sequence[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
    """A upsampled (bilinear) to ``size``: N×H×W."""
    return upsample(combined_map(maps), size)
