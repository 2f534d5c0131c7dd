"""STFPM's anomaly map and score (paper Eqs. 3–4; reference).

Per layer Ω^l = ½‖F̂_t^l − F̂_s^l‖² (= 1 − cos), bilinearly upsampled to the input size;
the map is the product of the layers' maps, the image score its maximum (the reference
applies no smoothing).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from multiad.methods.common import upsample
from multiad.methods.stfpm.loss import squared_distance_map


def layer_maps(t_feats: Sequence[torch.Tensor], s_feats: Sequence[torch.Tensor]
               ) -> list[torch.Tensor]:
    """Ω^l, N×1×h_l×w_l each (Eq. 3)."""
    return [0.5 * squared_distance_map(t, s)[:, None]
            for t, s in zip(t_feats, s_feats, strict=True)]


def product_map(maps: Sequence[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
    """Π_l upsample(Ω^l) at ``size`` (Eq. 4). N×H×W."""
    out = None
    for m in maps:
        up = upsample(m, size)
        out = up if out is None else out * up
    assert out is not None
    return out
