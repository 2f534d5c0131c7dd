"""Eqs. 13–15 on CUDA under bf16 autocast: the maps stay float32 (run on a GPU machine)."""

from __future__ import annotations

import pytest
import torch

from multiad.backbones import build_backbone
from multiad.config import RunConfig
from multiad.gaussian import gaussian_blur
from multiad.methods.multiad.anomaly_map import fuse_maps, image_score
from multiad.methods.multiad.torch_model import MultiADModel

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def test_predict_on_cuda_under_bf16_matches_float32_maps_on_cpu():
    """The GPU's smoothed map and score are the float32 functions of its layer maps: the
    same numbers the CPU computes from those maps (no bf16, no TF32 rounding)."""
    torch.manual_seed(0)
    model = MultiADModel(RunConfig(), build_backbone("wide_resnet50_2", "random")).eval()
    model.mff.calibrate([(0.5, 0.01), (0.4, 0.02), (0.3, 0.03), (0.2, 0.04)])
    model.cuda()
    x = torch.randn(4, 3, 256, 256, device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = model.predict(x)
    assert out.smoothed.dtype == out.score.dtype == torch.float32
    maps = [m.cpu() for m in out.layer_maps]
    mff = model.mff.cpu()
    smoothed = gaussian_blur(fuse_maps(maps, (256, 256), mff), 4.0)
    torch.testing.assert_close(out.smoothed.cpu(), smoothed, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out.score.cpu(), image_score(smoothed), rtol=1e-5, atol=1e-6)
