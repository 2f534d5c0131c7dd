"""EfficientAD's anomaly maps and score (paper §3.4; MHKD's Eq. 9 is the same rule).

- student–teacher map M_ST = mean over channels of (T̂ − S_ST)² (T̂: the teacher's output
  normalised per channel on the training images), autoencoder map
  M_AE = mean over channels of (A − S_AE)²;
- each normalised linearly so that its ``q_start`` and ``q_end`` quantiles over every
  pixel of the validation images' maps go to 0 and 0.1 (0.9 and 0.995);
- M = 0.5·M_ST + 0.5·M_AE, padded back to a quarter of the input size (an unpadded PDN's
  grid is smaller: 56 of 64 at 256×256) and bilinearly upsampled to the input size; the
  image score is its maximum.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from multiad.gaussian import gaussian_blur
from multiad.methods.common import upsample


def squared_difference_map(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """mean_c (a − b)²: N×1×h×w, float32."""
    return ((a.float() - b.float()) ** 2).mean(dim=1, keepdim=True)


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
    """0.1·(m − q_a)/(q_b − q_a): the quantile normalisation."""
    q_a, q_b = q
    return 0.1 * (m - q_a) / max(q_b - q_a, 1e-12)


def combined_map(maps: Sequence[torch.Tensor]) -> torch.Tensor:
    """M = 0.5·M_1 + 0.5·M_2 of the two normalised maps, N×1×h×w."""
    first, second = maps
    return 0.5 * first + 0.5 * second


def pixel_map(maps: Sequence[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
    """M padded (zeros) to a quarter of ``size`` when its grid is smaller (an unpadded
    PDN's), then upsampled (bilinear) to ``size``: N×H×W."""
    m = combined_map(maps)
    pad_h, pad_w = size[0] // 4 - m.shape[-2], size[1] // 4 - m.shape[-1]
    if pad_h > 0 or pad_w > 0:
        m = F.pad(m, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
    return upsample(m, size)


def smoothed(fused: torch.Tensor, sigma: float) -> torch.Tensor:
    """The pixel map smoothed by G_σ; σ = 0 (EfficientAD's default): as it is."""
    return gaussian_blur(fused, sigma) if sigma > 0 else fused

