"""Skip-TS's anomaly map and score (paper Eqs. 1, 7, 8): per compared stage
M_l = 1 − cos(F_t^l, F_s^l) along channels at every position (Eq. 1), each bilinearly
upsampled to the input size and summed (Eq. 7), smoothed by a Gaussian (σ = 4, §IV-F); the
score is the map's maximum (Eq. 8). The same computation as RD4AD's map (its Eqs. 4–5),
so the functions are RD4AD's."""

from __future__ import annotations

from multiad.methods.rd4ad.anomaly_map import layer_maps, summed_map

__all__ = ["layer_maps", "summed_map"]
