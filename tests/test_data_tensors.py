"""Preloading samples into tensors: shapes, resizing, normalisation and the decode cache."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

import multiad.data.image_io as image_io
from multiad.data import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Sample,
    SampleDataset,
    load_dataset,
    normalize,
    preload,
)
from multiad.data.tensors import resize_image, resize_mask
from multiad.data.testing import make_bmad_tree, make_mvtec_tree, write_png


@pytest.fixture()
def bottle(tmp_path):
    make_mvtec_tree(tmp_path / "mv", "bottle", n_train=3, n_good=2, defects={"crack": 2},
                    size=20)
    return load_dataset("mvtec", tmp_path / "mv", "bottle")


def test_preload_shapes_dtypes_and_order(bottle):
    split = preload(bottle.test, size=16, progress=False)
    n = len(bottle.test)
    assert len(split) == n == 4
    assert split.images.dtype == torch.uint8 and split.images.shape == (n, 3, 16, 16)
    assert split.masks.dtype == torch.bool and split.masks.shape == (n, 16, 16)
    assert split.labels.dtype == torch.long and split.labels.tolist() == [0, 0, 1, 1]
    assert split.defects == ["good", "good", "crack", "crack"]
    assert split.paths == [str(s.image) for s in bottle.test]
    assert not split.masks[:2].any() and split.masks[2:].flatten(1).any(1).all()
    assert split.size == 16


def test_resize_rules():
    rng = np.random.default_rng(0)
    for h, w, size in [(40, 40, 10), (24, 24, 32), (60, 30, 16)]:
        img = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
        out = resize_image(img.astype(np.float32) / 255, size)
        assert out.dtype == torch.uint8 and out.shape == (3, size, size)
        pil = np.asarray(Image.fromarray(img).resize((size, size), Image.BILINEAR))
        diff = np.abs(out.permute(1, 2, 0).numpy().astype(int) - pil.astype(int))
        assert diff.max() <= 1  # antialiased bilinear, as PIL does it (up to rounding)
    assert resize_image(np.full((4, 4, 3), 0.5, np.float32), 4).unique().tolist() == [128]
    mask = np.zeros((40, 40), bool)
    mask[10:30, 10:30] = True
    small = resize_mask(mask, 20)
    assert small.dtype == torch.bool and int(small.sum()) == 100
    assert small[5:15, 5:15].all()


def test_16bit_and_rgba_images_preload(tmp_path):
    g16 = write_png(tmp_path / "g.png", np.full((8, 8), 32896, np.uint16))  # 0.50196 * 65535
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 255
    rgba_path = write_png(tmp_path / "r.png", rgba)
    split = preload([Sample(g16, None, 0, "good"), Sample(rgba_path, None, 0, "good")],
                    size=8, progress=False, num_workers=1)
    assert split.images[0].unique().tolist() == [128]
    assert split.images[1, 0].unique().tolist() == [200]
    assert split.images[1, 1:].max() == 0


def test_multilevel_masks_survive_preload(tmp_path):
    root = make_bmad_tree(tmp_path, "B", "brain", mask_levels=(1, 2, 4), size=16)
    data = load_dataset("brain", root)
    split = preload(data.test, size=16, progress=False)
    for i, s in enumerate(data.test):
        if s.mask is not None:
            raw = np.asarray(image_io.read_mask(s.mask))
            assert torch.equal(split.masks[i], torch.from_numpy(raw))
            assert raw.sum() > 0


def test_cache_is_reused_without_decoding(bottle, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = preload(bottle.test, size=16, cache_dir=cache, progress=False)
    assert len(list(cache.glob("*.pt"))) == 1

    def no_decode(*_a, **_k):
        raise AssertionError("decoded again")

    monkeypatch.setattr(image_io, "read_image", no_decode)
    monkeypatch.setattr(image_io, "read_mask", no_decode)
    second = preload(bottle.test, size=16, cache_dir=cache, progress=False)
    assert torch.equal(first.images, second.images) and torch.equal(first.masks, second.masks)
    assert first.paths == second.paths and first.mask_paths == second.mask_paths
    assert first.defects == second.defects and torch.equal(first.labels, second.labels)
    # another size or a touched file is a different key, so it decodes (and here fails)
    with pytest.raises(AssertionError, match="decoded again"):
        preload(bottle.test, size=8, cache_dir=cache, progress=False)
    path = bottle.test[0].image
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    with pytest.raises(AssertionError, match="decoded again"):
        preload(bottle.test, size=16, cache_dir=cache, progress=False)


def test_corrupt_cache_file_is_rebuilt(bottle, tmp_path):
    cache = tmp_path / "cache"
    first = preload(bottle.train, size=8, cache_dir=cache, progress=False)
    (cache_file,) = cache.glob("*.pt")
    cache_file.write_bytes(b"garbage")
    again = preload(bottle.train, size=8, cache_dir=cache, progress=False)
    assert torch.equal(first.images, again.images)


def test_normalize_uint8_float_and_shapes():
    u8 = torch.tensor([[[[0]], [[255]], [[128]]]], dtype=torch.uint8).expand(2, 3, 4, 4)
    out = normalize(u8)
    assert out.dtype == torch.float32 and out.shape == (2, 3, 4, 4)
    expect = [(0 - IMAGENET_MEAN[0]) / IMAGENET_STD[0], (1 - IMAGENET_MEAN[1]) / IMAGENET_STD[1],
              (128 / 255 - IMAGENET_MEAN[2]) / IMAGENET_STD[2]]
    torch.testing.assert_close(out[0, :, 0, 0], torch.tensor(expect))
    torch.testing.assert_close(normalize(u8.float() / 255), out)
    torch.testing.assert_close(normalize(u8[0]), out[0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_normalize_on_gpu():
    u8 = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)
    torch.testing.assert_close(normalize(u8.cuda()).cpu(), normalize(u8))


def test_sample_dataset_with_dataloader(bottle):
    split = preload(bottle.test, size=16, progress=False)
    ds = SampleDataset(split)
    item = ds[2]
    assert item["image"].shape == (3, 16, 16) and item["image"].dtype == torch.float32
    assert item["mask"].shape == (1, 16, 16) and item["mask"].dtype == torch.float32
    assert int(item["label"]) == 1 and item["defect"] == "crack" and item["index"] == 2
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert batch["image"].shape == (4, 3, 16, 16) and batch["label"].tolist() == [0, 0, 1, 1]


def test_default_cache_is_per_user_not_in_the_dataset(bottle, tmp_path, monkeypatch):
    from multiad.config import DataConfig
    from multiad.data import default_cache_dir, load_split

    monkeypatch.delenv("MULTIAD_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "multiad" / "splits"
    monkeypatch.setenv("MULTIAD_CACHE_DIR", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"
    root = bottle.root.parent
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    load_split(DataConfig(kind="mvtec", root=str(root), category="bottle", image_size=8),
               "train", progress=False)
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before  # nothing written
    assert len(list((tmp_path / "mine").glob("split-*.pt"))) == 1


def test_an_unwritable_cache_costs_speed_not_the_run(bottle, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.warns(UserWarning, match="could not cache"):
        split = preload(bottle.train, size=8, cache_dir=blocker / "cache", progress=False)
    assert len(split) == len(bottle.train)


def test_normalize_takes_the_backbones_statistics():
    u8 = torch.full((1, 3, 2, 2), 255, dtype=torch.uint8)
    out = normalize(u8, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    torch.testing.assert_close(out, torch.full((1, 3, 2, 2), 2.0))
