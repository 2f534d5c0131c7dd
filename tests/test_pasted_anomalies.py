"""Pasted validation anomalies: deterministic, exact masks, uint8, grey stays grey, any size."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from multiad.data.pasted_anomalies import paste_anomalies
from multiad.data.synthetic_realtex import render_realtex
from multiad.data.synthetic_texture import render_texture


def _batch(n: int, h: int, w: int, grey: bool = False) -> torch.Tensor:
    """``n`` uint8 images (N×3×H×W): photographed gravel crops (grey) or woven texture."""
    out = []
    for i in range(n):
        rng = np.random.default_rng(i)
        side = max(h, w)
        img = render_realtex(rng, side)[1][..., None] if grey else render_texture(rng, side)[1]
        out.append(np.broadcast_to(img[:h, :w], (h, w, 3)))
    arr = np.round(np.stack(out) * 255).astype(np.uint8)
    return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()


def _check(x: torch.Tensor, y: torch.Tensor, m: torch.Tensor) -> None:
    assert y.dtype == torch.uint8 and y.shape == x.shape
    assert m.dtype == torch.bool and m.shape == (x.shape[0], *x.shape[2:])
    changed = (y != x).any(dim=1)
    assert not (changed & ~m).any(), "a pixel outside the mask changed"
    for i in range(len(x)):
        assert m[i].any() and m[i].float().mean() < 0.3
        assert changed[i][m[i]].float().mean() > 0.5, i  # the mask is where it changed


def test_deterministic_and_seeded():
    x = _batch(6, 96, 96)
    before = x.clone()
    y1, m1 = paste_anomalies(x, seed=3)
    y2, m2 = paste_anomalies(x, seed=3)
    y3, m3 = paste_anomalies(x, seed=4)
    assert torch.equal(x, before)  # the input is not modified
    assert torch.equal(y1, y2) and torch.equal(m1, m2)
    assert not torch.equal(m1, m3)
    _check(x, y1, m1)


@pytest.mark.parametrize("hw", [(64, 64), (64, 150), (131, 77), (256, 256)])
def test_any_size_from_64(hw):
    x = _batch(3, *hw)
    y, m = paste_anomalies(x, seed=0)
    _check(x, y, m)


def test_grey_images_stay_grey_and_single_images_work():
    x = _batch(5, 80, 96, grey=True)
    y, m = paste_anomalies(x, seed=1)
    _check(x, y, m)
    assert torch.equal(y[:, 0], y[:, 1]) and torch.equal(y[:, 0], y[:, 2])
    y1, m1 = paste_anomalies(x[:1], seed=1)  # one image: its own crop or a photograph
    _check(x[:1], y1, m1)


def test_every_shape_occurs_in_a_batch():
    x = _batch(6, 128, 128)
    _, m = paste_anomalies(x, seed=0)
    areas = m.float().mean(dim=(1, 2))
    assert areas.min() < 0.02  # a thin scratch among them


def test_rejects_other_inputs():
    with pytest.raises(ValueError, match="uint8"):
        paste_anomalies(torch.zeros(2, 3, 64, 64), seed=0)
    with pytest.raises(ValueError, match="uint8"):
        paste_anomalies(torch.zeros(2, 1, 64, 64, dtype=torch.uint8), seed=0)
    with pytest.raises(ValueError, match="at least"):
        paste_anomalies(torch.zeros(2, 3, 16, 64, dtype=torch.uint8), seed=0)
