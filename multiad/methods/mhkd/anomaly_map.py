"""MHKD's anomaly maps and score (paper §III-C, Eq. 9; reference ``predict``,
``map_normalization``, ``test``).

- structural map A_s = mean over channels of (f_t − f_s)², logical map A_g = mean over
  channels of (f_g − f_l)² (the difference between SEncoder1 and the GDecoder), on the
  teacher's grid;
- each normalised as EfficientAD's maps (:mod:`multiad.methods.efficientad.anomaly_map`:
  the validation maps' 0.9 and 0.995 quantiles go to 0 and 0.1);
- A = 0.5·A_s + 0.5·A_g; the image score is A's maximum on the teacher's grid;
- the pixel map is A bilinearly upsampled to the input size and Gaussian-smoothed
  (σ = 2, as the reference's saved maps).
"""

from __future__ import annotations

import torch

from multiad.methods.efficientad.anomaly_map import squared_difference_map


def branch_maps(f_t: torch.Tensor, f_l: torch.Tensor, f_g: torch.Tensor, f_s: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """(A_s, A_g), N×1×h×w each, float32."""
    return squared_difference_map(f_t, f_s), squared_difference_map(f_g, f_l)
