"""Eq. 13 maps, MFF Ψ calibration (Eq. 14), Gaussian G_θ and the score (Eq. 15)."""

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from multiad.gaussian import gaussian_blur, gaussian_kernel1d, kernel_size_for
from multiad.methods.multiad.anomaly_map import fuse_maps, image_score, layer_maps
from multiad.methods.multiad.mff import MapMoments, MultiScaleFusion


def test_layer_map_eq13_pointwise():
    torch.manual_seed(0)
    t, s = torch.randn(2, 5, 3, 4), torch.randn(2, 5, 3, 4)
    (m,) = layer_maps([t], [s])
    assert m.shape == (2, 1, 3, 4)
    b, i, j = 1, 2, 3
    cos = float(t[b, :, i, j] @ s[b, :, i, j]) / float(t[b, :, i, j].norm() * s[b, :, i, j].norm())
    assert abs(float(m[b, 0, i, j]) - (1 - cos)) < 1e-6


def test_gaussian_kernel_sigma4_is_33_taps_and_normalised():
    assert kernel_size_for(4.0) == 33
    k = gaussian_kernel1d(4.0)
    assert k.numel() == 33 and abs(float(k.sum()) - 1) < 1e-6
    assert int(k.argmax()) == 16


def test_gaussian_blur_matches_scipy_mirror():
    rng = np.random.default_rng(0)
    img = rng.random((2, 70, 50)).astype(np.float32)
    ours = gaussian_blur(torch.from_numpy(img), sigma=4.0).numpy()
    ref = np.stack([gaussian_filter(x.astype(np.float64), sigma=4.0, mode="mirror", truncate=4.0)
                    for x in img])
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_score_is_max_of_smoothed_map():
    m = torch.rand(3, 16, 16)
    torch.testing.assert_close(image_score(m), torch.tensor([float(x.max()) for x in m]))


def _random_maps(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(n, 1, s, s, generator=g) * (k + 1) for k, s in enumerate((16, 8, 4, 2))]


def test_map_moments_match_numpy_regardless_of_batching():
    maps = _random_maps()
    whole, parts = MapMoments(), MapMoments()
    whole.update(maps)
    for i in range(0, 6, 4):
        parts.update([m[i:i + 4] for m in maps])
    for (mu, var), (mu2, var2), m in zip(whole.result(), parts.result(), maps, strict=True):
        a = m.double().numpy()
        assert abs(mu - a.mean()) < 1e-12 and abs(var - a.var()) < 1e-12
        assert abs(mu - mu2) < 1e-12 and abs(var - var2) < 1e-12


def test_mff_calibration_standardises_each_scale():
    maps = _random_maps()
    mom = MapMoments()
    mom.update(maps)
    mff = MultiScaleFusion(relu=False)
    mff.calibrate(mom.result())
    for out in mff(maps):
        assert abs(float(out.double().mean())) < 1e-5
        assert abs(float(out.double().std(unbiased=False)) - 1) < 1e-4
    relu = MultiScaleFusion(relu=True)
    relu.calibrate(mom.result())
    for out, raw in zip(relu(maps), mff(maps), strict=True):
        torch.testing.assert_close(out, raw.clamp(min=0))


def test_mff_requires_calibration_and_never_trains():
    mff = MultiScaleFusion()
    with pytest.raises(RuntimeError, match="calibrat"):
        mff(_random_maps())
    mff.train()
    assert not mff.training


def test_fusion_sum_and_product_eq14():
    maps = _random_maps(n=2)
    up = [torch.nn.functional.interpolate(m, size=(32, 32), mode="bilinear",
                                          align_corners=False)[:, 0] for m in maps]
    torch.testing.assert_close(fuse_maps(maps, (32, 32)), up[0] + up[1] + up[2] + up[3])
    torch.testing.assert_close(fuse_maps(maps, (32, 32), mode="product"),
                               up[0] * up[1] * up[2] * up[3])
    with pytest.raises(ValueError):
        fuse_maps(maps, (32, 32), mode="max")


def test_gaussian_blur_on_maps_smaller_than_the_kernel():
    x = torch.zeros(2, 16, 16)
    x[:, 8, 8] = 1.0
    y = gaussian_blur(x, sigma=8.0)  # 65 taps on a 16×16 map: truncated to 31, renormalised
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert float(y[0, 8, 8]) > float(y[0, 0, 0])
    ones = torch.ones(1, 4, 4)
    assert torch.allclose(gaussian_blur(ones, sigma=8.0), ones)


def test_gaussian_blur_is_float32_inside_an_autocast_region():
    """A caller's bf16 autocast (inference on a GPU) must not round the maps metrics rank."""
    x = torch.rand(3, 1, 40, 24, dtype=torch.float32)
    plain = gaussian_blur(x, sigma=4.0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = gaussian_blur(x, sigma=4.0)
    assert inside.dtype == torch.float32 and inside.shape == x.shape
    torch.testing.assert_close(inside, plain, rtol=0, atol=0)


def test_predict_keeps_maps_float32_under_bf16_autocast():
    """The networks may run in bf16; Ψ, the fusion, G_σ and the score stay float32, so the
    smoothed map is the float32 function of the layer maps (Eqs. 14–15), not a bf16 one."""
    from multiad.backbones import build_backbone
    from multiad.config import RunConfig
    from multiad.methods.multiad.torch_model import MultiADModel

    torch.manual_seed(0)
    model = MultiADModel(RunConfig(), build_backbone("wide_resnet50_2", "random")).eval()
    model.mff.calibrate([(0.5, 0.01), (0.4, 0.02), (0.3, 0.03), (0.2, 0.04)])
    x = torch.randn(2, 3, 64, 64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model.predict(x)
    assert all(m.dtype == torch.float32 for m in out.layer_maps)
    assert out.fused.dtype == out.smoothed.dtype == out.score.dtype == torch.float32
    fused = fuse_maps(out.layer_maps, (64, 64), model.mff)
    torch.testing.assert_close(out.fused, fused, rtol=0, atol=0)
    torch.testing.assert_close(out.smoothed, gaussian_blur(fused, 4.0), rtol=0, atol=0)
    # bf16 would leave ~256 distinct values per octave; float32 keeps the pixels apart
    assert out.smoothed[0].unique().numel() > 0.9 * out.smoothed[0].numel()


def test_blur_matrix_first_built_in_inference_mode_serves_autograd_later():
    from multiad.gaussian import _MATRICES

    _MATRICES.clear()
    with torch.inference_mode():
        gaussian_blur(torch.rand(1, 1, 23, 19), sigma=2.0)
    x = torch.rand(1, 1, 23, 19, requires_grad=True)
    gaussian_blur(x, sigma=2.0).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
