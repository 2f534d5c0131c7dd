"""Skip-TS's T–S model (paper §III-B, §III-C; reference ``encoder.py`` and ``decoder.py``).

- T-Net: the frozen teacher's four stages E1–E4 (WRN-50-2: 256, 512, 1024, 2048 channels at
  strides 4–32).
- S-Net: three decoder stages D3, D2, D1, symmetric to E4–E2: each opens with a stride-2
  transposed-convolution bottleneck and reconstructs the channels and grid of E3, E2, E1
  (RD4AD's reverse WRN-50-2 decoder, ``ReverseDecoder``, blocks (3, 4, 6)), fed directly
  with E4's output: no bottleneck between T and S ("direct" reverse distillation).
- Skip connections: D2 takes F_t^3 + F_s^3 and D1 takes F_t^2 + F_s^2 (§III-C). The code
  adds a ReLU to each sum; both terms are ReLU outputs on ResNets, so it changes nothing
  there, and the paper's plain sum is kept (the offline EfficientNet-Lite's stages end
  without an activation).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from multiad.backbones import FrozenBackbone
from multiad.config import RunConfig
from multiad.gaussian import gaussian_blur
from multiad.methods.base import AnomalyOutput
from multiad.methods.rd4ad.torch_model import ReverseDecoder
from multiad.methods.skip_ts.anomaly_map import layer_maps, summed_map


class SkipTSModel(nn.Module):
    """T-Net (the frozen teacher) and S-Net (the decoder); ``predict`` gives Eqs. 7–8."""

    def __init__(self, cfg: RunConfig, teacher: FrozenBackbone) -> None:
        super().__init__()
        self.cfg, self.teacher = cfg, teacher
        channels = teacher.feature_info.channels
        if len(channels) != 4:
            raise ValueError(f"Skip-TS needs a teacher with four stages, got {len(channels)}")
        self.decoder = ReverseDecoder(channels[:3], cfg.skip_ts.decoder_blocks,
                                      cin=channels[3])

    def reconstruct(self, feats: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """F_s^1..3 (shallow to deep) from the teacher's F_t^1..4: D3 decodes F_t^4; with
        skip connections each next stage decodes F_t^{j+1} + F_s^{j+1}."""
        x = feats[3]
        outs = []
        for k, stage in enumerate(self.decoder.stages):
            if k and self.cfg.skip_ts.skip:
                x = x + feats[3 - k]
            x = stage(x)
            outs.append(x)
        return outs[::-1]

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> AnomalyOutput:
        feats = self.teacher(x)
        dec = self.reconstruct(feats)
        with torch.autocast(x.device.type, enabled=False):
            maps = layer_maps(feats[:3], dec)
            fused = summed_map(maps, tuple(x.shape[-2:]))
            smoothed = gaussian_blur(fused, self.cfg.skip_ts.sigma)
        return AnomalyOutput(layer_maps=maps, fused=fused, smoothed=smoothed,
                             score=smoothed.flatten(1).amax(dim=1))
