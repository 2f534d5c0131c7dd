"""The real-texture set: photographed normals, defects blended from other photographs,
deterministic bytes, exact masks, the usual layout and checks."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image

from multiad.data import load_dataset, make_synthetic, read_image, read_mask
from multiad.data.check import check_dataset
from multiad.data.photographs import photograph
from multiad.data.synthetic import SYNTHETIC_CATEGORIES, read_manifest
from multiad.data.synthetic_realtex import REALTEX_CATEGORIES, REALTEX_DEFECTS, render_realtex

SMALL = {"size": 64, "n_train": 3, "n_test_good": 2, "n_test_per_defect": 2}


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_categories_and_their_photographs():
    assert set(REALTEX_CATEGORIES) <= set(SYNTHETIC_CATEGORIES)
    assert REALTEX_CATEGORIES["realtex"] == "gravel"
    for texture in REALTEX_CATEGORIES.values():
        assert photograph(texture).shape == (512, 512)  # bundled with scikit-image


def test_same_seed_identical_bytes_different_seed_different(tmp_path):
    a = _files(make_synthetic("realtex", tmp_path / "a", seed=7, **SMALL))
    b = _files(make_synthetic("realtex", tmp_path / "b", seed=7, **SMALL))
    c = _files(make_synthetic("realtex", tmp_path / "c", seed=8, **SMALL))
    assert a == b and a.keys() == c.keys()
    assert all(a[k] != c[k] for k in a if k.endswith(".png") and not k.startswith("ground"))


@pytest.mark.parametrize("category", sorted(REALTEX_CATEGORIES))
def test_layout_counts_masks_and_check(tmp_path, category):
    folder = make_synthetic(category, tmp_path, seed=1, **SMALL)
    manifest = read_manifest(folder)
    assert manifest["texture"] == REALTEX_CATEGORIES[category]
    assert manifest["defects"] == list(REALTEX_DEFECTS)
    data = load_dataset("synthetic", tmp_path, category)
    assert data.root == folder and data.kind == "synthetic" and data.has_masks
    counts = data.counts()
    assert counts["train"]["normal"] == 3
    assert counts["test"]["defects"] == {"good": 2, **dict.fromkeys(REALTEX_DEFECTS, 2)}
    assert Image.open(folder / "train/good/000.png").mode == "L"  # grey, like the photograph
    for s in data.test:
        if s.label:
            mask = read_mask(s.mask)
            assert mask.shape == (64, 64) and mask.any() and mask.mean() < 0.25
    report = check_dataset("synthetic", tmp_path, category)
    assert report.ok, report.problems + [str(d) for d in report.differences]


@pytest.mark.parametrize("defect", REALTEX_DEFECTS)
def test_masks_cover_exactly_the_altered_pixels(defect):
    for seed in range(5):
        clean, image, mask = render_realtex(np.random.default_rng(seed), 128, defect)
        altered = np.abs(image - clean) > 0
        assert mask.any(), (defect, seed)
        assert not (altered & ~mask).any(), "a pixel outside the mask was changed"
        assert altered[mask].mean() > 0.5  # the footprint, not a loose box
        assert np.abs(image - clean)[mask].mean() > 0.05  # visible


def test_normals_vary_but_stay_the_same_material():
    a = render_realtex(np.random.default_rng(0), 128)[1]
    b = render_realtex(np.random.default_rng(1), 128)[1]
    assert np.abs(a - b).mean() > 0.05  # different crops
    for img in (a, b):  # the photograph's tone, not a blank or saturated image
        assert 0.3 < img.mean() < 0.7 and img.std() > 0.08


def test_default_set_is_generated_quickly(tmp_path):
    start = time.perf_counter()
    data = load_dataset("synthetic", tmp_path, "realtex")  # generated on demand
    elapsed = time.perf_counter() - start
    counts = data.counts()
    assert counts["train"]["normal"] == 64 and counts["test"]["normal"] == 16
    assert read_image(data.train[0].image).shape == (256, 256, 3)
    assert elapsed < 30, elapsed
