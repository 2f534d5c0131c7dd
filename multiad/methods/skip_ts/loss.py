"""Skip-TS's training loss L_DRKD = α·L_sim + β·L_mac (paper Eq. 5; α 1, β 0.05), over the
three compared stages (shallow to deep: F^1, F^2, F^3).

L_sim (Eqs. 2–3) and L_mac (Eq. 4) each in two forms: as the paper prints them and as the
reference code computes them (the defaults: ``SkipTSConfig``)."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import torch
import torch.nn.functional as F

from multiad.methods.rd4ad.loss import rd4ad_loss
from multiad.methods.skip_ts.anomaly_map import layer_maps


def similarity_loss(t: Sequence[torch.Tensor], s: Sequence[torch.Tensor],
                    form: str = "flattened") -> torch.Tensor:
    """L_sim = Σ_l L_l (Eq. 3). ``position``: L_l = the mean over positions (and the batch)
    of M_l (Eqs. 1–2). ``flattened`` (the code): L_l = mean_b (1 − cos) of each image's
    stage-l features flattened to one vector — RD4AD's loss."""
    if form == "flattened":
        return rd4ad_loss(t, s)
    if form == "position":
        return torch.stack([m.mean() for m in layer_maps(t, s)]).sum()
    raise ValueError(f"similarity form {form!r} unknown")


def mac_loss_maps(t: Sequence[torch.Tensor], s: Sequence[torch.Tensor]) -> torch.Tensor:
    """Eq. 4: every layer map M_l bilinearly upsampled to the largest map's grid
    (w_{a−1}×h_{a−1}, the shallowest stage), then Σ over the stage pairs {i, j} (each pair
    once) of (M_i − M_j)², summed over positions and divided by their number; averaged over
    the batch."""
    maps = layer_maps(t, s)
    size = maps[0].shape[-2:]
    up = [F.interpolate(m, size=size, mode="bilinear", align_corners=False) for m in maps]
    total = sum(((a - b) ** 2).mean() for a, b in combinations(up, 2))
    return torch.as_tensor(total)


def mac_loss_mse_gaps(t: Sequence[torch.Tensor], s: Sequence[torch.Tensor]) -> torch.Tensor:
    """The reference code's L_mac: with e_l = MSE(F_t^l, F_s^l) over all elements and e_l↑
    the same after bilinearly upsampling both stage-l maps (``align_corners=True``) to a
    shallower stage's grid, |e_3↑2 − e_2| + |e_2↑1 − e_1| + |e_3↑2↑1 − e_1| (the stage pairs
    (3, 2), (2, 1), (3, 1); the last upsamples stage 3 twice, through stage 2's grid)."""
    t1, t2, t3 = (x.float() for x in t)
    s1, s2, s3 = (x.float() for x in s)

    def up(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=True)

    t32, s32 = up(t3, t2), up(s3, t2)
    e1, e2 = F.mse_loss(s1, t1), F.mse_loss(s2, t2)
    return ((F.mse_loss(s32, t32) - e2).abs()
            + (F.mse_loss(up(s2, t1), up(t2, t1)) - e1).abs()
            + (F.mse_loss(up(s32, t1), up(t32, t1)) - e1).abs())


def drkd_loss(t: Sequence[torch.Tensor], s: Sequence[torch.Tensor], alpha: float = 1.0,
              beta: float = 0.05, similarity: str = "flattened", mac: str = "maps"
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(L_DRKD, L_sim, L_mac) with L_DRKD = α·L_sim + β·L_mac (Eq. 5)."""
    if len(t) != 3 or len(s) != 3:
        raise ValueError(f"Skip-TS compares three stages, got {len(t)} and {len(s)}")
    sim = similarity_loss(t, s, similarity)
    if mac == "mse_gaps":
        consistency = mac_loss_mse_gaps(t, s)
    elif mac == "maps":
        consistency = mac_loss_maps(t, s)
    elif mac == "none":
        consistency = sim.new_zeros(())
    else:
        raise ValueError(f"mac form {mac!r} unknown")
    return alpha * sim + beta * consistency, sim, consistency
