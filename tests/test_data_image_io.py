"""Decoding images and masks: every pixel format we meet on disk."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from multiad.data import DataError, read_image, read_mask
from multiad.data.image_io import image_size
from multiad.data.testing import write_png


def test_rgb_8bit_scaled_to_unit(tmp_path):
    arr = np.array([[[0, 128, 255], [10, 20, 30]]], dtype=np.uint8)
    out = read_image(write_png(tmp_path / "a.png", arr))
    assert out.dtype == np.float32 and out.shape == (1, 2, 3)
    np.testing.assert_allclose(out, arr / 255.0, atol=1e-7)


def test_rgba_drops_alpha_keeps_colour(tmp_path):
    arr = np.zeros((2, 2, 4), dtype=np.uint8)
    arr[..., 0], arr[..., 1], arr[..., 2] = 200, 100, 50
    arr[0, 0, 3], arr[1, 1, 3] = 0, 255
    path = write_png(tmp_path / "rgba.png", arr)
    assert Image.open(path).mode == "RGBA"
    out = read_image(path)
    assert out.shape == (2, 2, 3)
    np.testing.assert_allclose(out[0, 0], [200 / 255, 100 / 255, 50 / 255], atol=1e-7)
    np.testing.assert_allclose(out[1, 1], out[0, 0])


def test_16bit_grayscale_scaled_by_65535_not_clipped(tmp_path):
    arr = np.array([[0, 1000, 32768, 65535]], dtype=np.uint16)
    path = write_png(tmp_path / "g16.png", arr)
    assert Image.open(path).mode.startswith("I")
    out = read_image(path)
    assert out.shape == (1, 4, 3)
    expected = arr.astype(np.float64) / 65535.0
    for c in range(3):
        np.testing.assert_allclose(out[..., c], expected, rtol=1e-6, atol=1e-7)
    assert out[0, 1, 0] < 0.02  # 1000/65535; clipping at 255 would give 1.0


def test_grayscale_replicated_to_three_channels(tmp_path):
    arr = np.array([[0, 51, 255]], dtype=np.uint8)
    out = read_image(write_png(tmp_path / "l.png", arr))
    assert out.shape == (1, 3, 3)
    np.testing.assert_allclose(out[..., 0], arr / 255.0, atol=1e-7)
    np.testing.assert_array_equal(out[..., 0], out[..., 2])


def test_grey_alpha_and_bilevel(tmp_path):
    la = Image.fromarray(np.array([[[10, 0], [250, 255]]], dtype=np.uint8), mode="LA")
    la.save(tmp_path / "la.png")
    np.testing.assert_allclose(read_image(tmp_path / "la.png")[0, :, 1], [10 / 255, 250 / 255],
                               atol=1e-7)
    bw = write_png(tmp_path / "b.png", np.array([[True, False]]))
    np.testing.assert_allclose(read_image(bw)[0, :, 0], [1.0, 0.0])


def test_palette_image_goes_through_palette(tmp_path):
    img = Image.new("P", (2, 1))
    img.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 200] + [0] * (256 * 3 - 9))
    img.putpixel((0, 0), 1)
    img.putpixel((1, 0), 2)
    img.save(tmp_path / "p.png")
    out = read_image(tmp_path / "p.png")
    np.testing.assert_allclose(out[0, 0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(out[0, 1], [0.0, 0.0, 200 / 255], atol=1e-7)


@pytest.mark.parametrize("ext", [".jpg", ".bmp", ".tif"])
def test_other_formats(tmp_path, ext):
    arr = np.full((8, 8), 128, dtype=np.uint8)
    path = tmp_path / f"x{ext}"
    Image.fromarray(arr).save(path)
    out = read_image(path)
    assert out.shape == (8, 8, 3)
    assert abs(float(out.mean()) - 128 / 255) < 0.02


def test_multilevel_mask_positive_at_every_level(tmp_path):
    arr = np.array([[0, 1, 2, 4], [0, 0, 4, 1]], dtype=np.uint8)
    mask = read_mask(write_png(tmp_path / "m.png", arr))
    assert mask.dtype == bool
    np.testing.assert_array_equal(mask, arr > 0)
    assert mask.sum() == 5  # /255 then int-cast would give 0 here


def test_mask_any_channel_ignores_alpha(tmp_path):
    rgb = np.zeros((1, 3, 3), dtype=np.uint8)
    rgb[0, 1, 2] = 3
    np.testing.assert_array_equal(read_mask(write_png(tmp_path / "c.png", rgb))[0],
                                  [False, True, False])
    rgba = np.zeros((1, 2, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    rgba[0, 1, 0] = 255
    np.testing.assert_array_equal(read_mask(write_png(tmp_path / "a.png", rgba))[0],
                                  [False, True])


def test_16bit_and_palette_masks(tmp_path):
    m16 = np.array([[0, 1, 65535]], dtype=np.uint16)
    np.testing.assert_array_equal(read_mask(write_png(tmp_path / "m16.png", m16))[0],
                                  [False, True, True])
    pal = Image.fromarray(np.array([[0, 4, 0]], dtype=np.uint8)).convert("P")
    pal.save(tmp_path / "mp.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "mp.png")[0], [False, True, False])


def test_truncated_image_raises_dataerror_naming_file(tmp_path):
    path = write_png(tmp_path / "full.png", np.random.default_rng(0).integers(
        0, 255, (64, 64, 3), dtype=np.uint8))
    cut = tmp_path / "cut.png"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError, match="cut.png") as info:
        read_image(cut)
    assert isinstance(info.value, ValueError)
    assert "Re-download" in str(info.value)
    with pytest.raises(DataError, match="cut.png"):
        read_mask(cut)


def test_unreadable_and_missing_files(tmp_path):
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image at all")
    with pytest.raises(DataError, match="junk.png"):
        read_image(junk)
    with pytest.raises(DataError, match="junk.png"):
        image_size(junk)
    with pytest.raises(DataError, match="missing.png"):
        read_image(tmp_path / "missing.png")


def test_image_size_reads_header(tmp_path):
    path = write_png(tmp_path / "s.png", np.zeros((5, 7), dtype=np.uint8))
    assert image_size(path) == (7, 5)
