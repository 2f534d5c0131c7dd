"""Synthetic sets: deterministic bytes, honest masks, real normal variation, atomic output."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image

import multiad.data.synthetic as synthetic
from multiad.data import DataError, load_dataset, make_synthetic, read_image, read_mask
from multiad.data.synthetic import MANIFEST, read_manifest
from multiad.data.synthetic_medical import render_medical
from multiad.data.synthetic_texture import render_texture

SMALL = {"size": 64, "n_train": 3, "n_test_good": 2, "n_test_per_defect": 2}


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("category", ["texture", "medical", "loco"])
def test_same_seed_identical_bytes_different_seed_different(tmp_path, category):
    a = _files(make_synthetic(category, tmp_path / "a", seed=7, **SMALL))
    b = _files(make_synthetic(category, tmp_path / "b", seed=7, **SMALL))
    c = _files(make_synthetic(category, tmp_path / "c", seed=8, **SMALL))
    assert a == b
    # the same files (LOCO: the same images; how many rules an image breaks is random)
    same = (lambda k: not k.startswith("ground_truth/")) if category == "loco" else bool
    assert {k for k in a if same(k)} == {k for k in c if same(k)}
    pngs = [k for k in a if k.endswith(".png")]
    assert all(a[k] != c[k] for k in pngs if k.startswith("train/"))


@pytest.mark.parametrize("category", ["texture", "medical"])
def test_layout_counts_and_nonempty_masks(tmp_path, category):
    folder = make_synthetic(category, tmp_path, seed=1, **SMALL)
    data = load_dataset("synthetic", tmp_path, category)
    assert data.root == folder and data.kind == "synthetic" and data.has_masks
    counts = data.counts()
    n_def = len(read_manifest(folder)["defects"])
    assert counts["train"]["normal"] == 3
    assert (counts["test"]["normal"], counts["test"]["anomalous"]) == (2, 2 * n_def)
    for s in data.test:
        if s.label:
            mask = read_mask(s.mask)
            assert mask.shape == (64, 64) and mask.any()


@pytest.mark.parametrize("render,defect", [(render_texture, "scratch"), (render_texture, "hole"),
                                           (render_texture, "stain"), (render_medical, "lesion"),
                                           (render_medical, "mass")])
def test_masks_cover_exactly_the_altered_pixels(render, defect):
    for seed in range(6):
        clean, image, mask = render(np.random.default_rng(seed), 96, defect)
        altered = np.abs(image - clean) > 0
        if altered.ndim == 3:
            altered = altered.any(axis=2)
        assert mask.any(), (defect, seed)
        assert not (altered & ~mask).any(), "a pixel outside the mask was changed"
        assert altered[mask].mean() > 0.5  # the mask is the footprint, not a loose box
        if defect != "lesion":  # visible: a clear mean change inside the footprint
            assert np.abs(image - clean)[mask].mean() > 0.03


def test_normal_variation_is_real():
    a = render_texture(np.random.default_rng(0), 64)[1]
    b = render_texture(np.random.default_rng(1), 64)[1]
    assert np.abs(a - b).mean() > 0.03
    m1 = render_medical(np.random.default_rng(0), 64)[1]
    m2 = render_medical(np.random.default_rng(1), 64)[1]
    assert m1.ndim == 2 and np.abs(m1 - m2).mean() > 0.01


def test_medical_pngs_are_single_channel_some_16bit(tmp_path):
    folder = make_synthetic("medical", tmp_path, seed=0, **SMALL)
    modes = {Image.open(p).mode for p in folder.glob("t*/*/*.png")}
    assert modes == {"L", "I;16"}
    p16 = next(p for p in folder.glob("train/good/*.png") if Image.open(p).mode == "I;16")
    raw = np.asarray(Image.open(p16)).astype(np.float64)
    assert raw.max() > 255  # genuinely uses the 16-bit range
    np.testing.assert_allclose(read_image(p16)[..., 0], raw / 65535.0, rtol=1e-6)


def test_generated_once_then_reused(tmp_path, monkeypatch):
    folder = make_synthetic("texture", tmp_path, seed=2, **SMALL)
    manifest = (folder / MANIFEST).read_bytes()

    def boom(*_a, **_k):
        raise AssertionError("regenerated")

    monkeypatch.setattr(synthetic, "_generate_into", boom)
    assert make_synthetic("texture", tmp_path, seed=2, **SMALL) == folder
    assert load_dataset("synthetic", tmp_path, "texture").root == folder
    assert load_dataset("synthetic", folder, "texture").root == folder
    assert (folder / MANIFEST).read_bytes() == manifest


def test_other_params_replace_set_but_foreign_folders_are_kept(tmp_path):
    make_synthetic("texture", tmp_path, seed=2, **SMALL)
    folder = make_synthetic("texture", tmp_path, seed=2, **{**SMALL, "n_train": 4})
    assert len(list((folder / "train" / "good").iterdir())) == 4
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no leftovers
    (tmp_path / "medical").mkdir()
    (tmp_path / "medical" / "mine.txt").write_text("user data")
    with pytest.raises(DataError, match="no complete synthetic set"):
        make_synthetic("medical", tmp_path, **SMALL)
    assert (tmp_path / "medical" / "mine.txt").exists()


def test_interrupted_generation_leaves_no_set(tmp_path, monkeypatch):
    real = synthetic._save_png
    calls = {"n": 0}

    def flaky(arr, path):
        calls["n"] += 1
        if calls["n"] > 3:
            raise OSError("disk full")
        return real(arr, path)

    monkeypatch.setattr(synthetic, "_save_png", flaky)
    with pytest.raises(OSError):
        make_synthetic("texture", tmp_path, **SMALL)
    assert not (tmp_path / "texture").exists()
    assert list(tmp_path.iterdir()) == []


def test_default_set_is_generated_quickly(tmp_path):
    start = time.perf_counter()
    data = load_dataset("synthetic", tmp_path, "texture")  # generated on demand
    elapsed = time.perf_counter() - start
    counts = data.counts()
    assert counts["train"]["normal"] == 64 and counts["test"]["normal"] == 16
    assert counts["test"]["defects"] == {"good": 16, "hole": 10, "scratch": 10, "stain": 10}
    assert read_image(data.train[0].image).shape == (256, 256, 3)
    assert elapsed < 30, elapsed


def test_loco_set_in_the_official_layout_with_honest_regions(tmp_path):
    from multiad.data import LocoData
    from multiad.data.mvtec_loco import loco_regions, read_region
    from multiad.data.synthetic_loco import LOGICAL_DEFECTS, PIXEL_VALUES

    folder = make_synthetic("loco", tmp_path, seed=2, size=64, n_train=12, n_test_good=2,
                            n_test_per_defect=4)
    assert (folder / "defects_config.json").is_file() and (folder / "validation/good").is_dir()
    data = load_dataset("synthetic", tmp_path, "loco")
    assert isinstance(data, LocoData) and data.kind == "synthetic"
    assert data.layout == "mvtec_loco" and len(data.valid) == 2  # max(2, 12 // 6)
    counts = data.counts()["test"]["defects"]
    assert counts == {"good": 2, "logical_anomalies": 12, "structural_anomalies": 8}
    assert {d.defect_name: v for v, d in data.defects.items()} == {
        k: v for k, v in PIXEL_VALUES.items()}
    names = set()
    for s in data.test:
        if not s.label:
            continue
        kinds = [read_region(r, data.defects)[1].defect_name for r in s.regions]
        names.update(kinds)
        logical = s.defect == "logical_anomalies"
        assert all((k in LOGICAL_DEFECTS) == logical for k in kinds)
        assert len(kinds) in ((1, 2) if logical else (1,))
    assert names == set(PIXEL_VALUES)
    assert any(len(s.regions) == 2 for s in data.test)  # some images break two rules
    regions = loco_regions(data.test, data.defects, 64, 64)
    assert not regions.dropped
    # a missing disc's region shows the tray (no red/blue disc), a swapped disc the other
    # row's colour: the ground truth marks where the rule is broken
    for s, masks, kinds in zip(data.test, regions.masks, regions.defects, strict=True):
        img = read_image(s.image).astype(float)
        for m, k in zip(masks if masks is not None else [], kinds, strict=True):
            r, g, b = (img[..., c][m].mean() for c in range(3))
            if k == "missing_disc":
                assert abs(r - b) < 0.15, (s.image, r, b)
            elif k == "swapped_colour":
                top = np.argwhere(m)[:, 0].mean() < 32
                assert (b > r) if top else (r > b), s.image
