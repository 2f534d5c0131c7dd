"""Every on-disk layout loads with the right counts and image/mask pairing."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from multiad.data import DataError, load_dataset
from multiad.data.bmad import MVFA_NAMES
from multiad.data.testing import BMAD_LAYOUTS, make_bmad_tree, make_mvtec_tree, write_png


def _check_pairs(data):
    for split in (data.train, data.valid, data.test):
        for s in split:
            assert (s.label == 0) == (s.defect == "good")
            if s.label == 0:
                assert s.mask is None
            elif data.has_masks:
                assert s.mask is not None and s.mask.is_file()
                assert s.mask.stem.removesuffix("_mask") == s.image.stem


def test_mvtec_category_counts_and_pairing(tmp_path):
    make_mvtec_tree(tmp_path, "bottle", n_train=3, n_good=2, defects={"crack": 2, "hole": 1})
    data = load_dataset("mvtec", tmp_path, "bottle")
    assert (data.name, data.kind, data.layout, data.category) == ("mvtec/bottle", "mvtec",
                                                                  "mvtec", "bottle")
    counts = data.counts()
    assert counts["train"] == {"normal": 3, "anomalous": 0, "total": 3, "defects": {"good": 3}}
    assert counts["test"]["defects"] == {"crack": 2, "good": 2, "hole": 1}
    assert (counts["test"]["normal"], counts["test"]["anomalous"]) == (2, 3)
    assert counts["valid"]["total"] == 0
    assert data.has_masks
    assert [s.defect for s in data.test] == ["good", "good", "crack", "crack", "hole"]
    _check_pairs(data)


def test_mvtec_root_may_be_category_folder_or_archive_parent(tmp_path):
    folder = make_mvtec_tree(tmp_path / "mvtec_anomaly_detection", "grid")
    assert load_dataset("mvtec", folder).category == "grid"
    assert load_dataset("mvtec", folder, "grid").root == folder
    assert load_dataset("mvtec", tmp_path, "grid").root == folder


def test_folder_kind_with_and_without_ground_truth(tmp_path):
    make_mvtec_tree(tmp_path, "parts", defects={"dent": 2})
    data = load_dataset("folder", tmp_path / "parts")
    assert data.has_masks and data.name == "folder/parts"
    _check_pairs(data)
    assert load_dataset("folder", tmp_path, "parts").counts() == data.counts()

    make_mvtec_tree(tmp_path, "nomask", defects={"dent": 2}, masks=False)
    data = load_dataset("folder", tmp_path / "nomask")
    assert not data.has_masks
    assert all(s.mask is None for s in data.test)
    assert data.counts()["test"]["anomalous"] == 2
    assert any("pixel-level metrics are skipped" in n for n in data.notes)


@pytest.mark.parametrize("kind", ["brain", "liver", "retina"])
@pytest.mark.parametrize("layout", BMAD_LAYOUTS)
def test_bmad_layouts(tmp_path, layout, kind):
    root = make_bmad_tree(tmp_path / "data", layout, kind, n_train=4, valid=(1, 2),
                          test=(2, 3))
    data = load_dataset(kind, root)
    assert data.layout == layout
    counts = data.counts()
    assert (counts["train"]["normal"], counts["train"]["anomalous"]) == (4, 0)
    assert (counts["valid"]["normal"], counts["valid"]["anomalous"]) == (1, 2)
    assert (counts["test"]["normal"], counts["test"]["anomalous"]) == (2, 3)
    assert counts["test"]["defects"] == {"Ungood": 3, "good": 2}
    _check_pairs(data)


def test_bmad_d_root_may_be_top_or_inner_folder(tmp_path):
    root = make_bmad_tree(tmp_path, "D", "brain")
    inner = root / MVFA_NAMES["brain"]
    assert load_dataset("brain", root).root == inner
    assert load_dataset("brain", inner).layout == "D"
    # all three MVFA sets side by side: each kind finds its own folder
    make_bmad_tree(tmp_path, "D", "liver", n_train=2)
    make_bmad_tree(tmp_path, "D", "retina", n_train=5)
    assert load_dataset("liver", root).counts()["train"]["normal"] == 2
    assert load_dataset("retina", root).counts()["train"]["normal"] == 5
    with pytest.raises(DataError, match="not the brain set"):
        load_dataset("brain", root / MVFA_NAMES["liver"])


def test_bmad_parent_folders_and_nested_copies(tmp_path):
    make_bmad_tree(tmp_path / "BMAD" / "Brain", "B", "brain", n_train=3)
    make_bmad_tree(tmp_path / "BMAD" / "Liver" / "Train" / "hist_DIY", "B-Liver", "liver",
                   n_train=6)
    assert load_dataset("brain", tmp_path).counts()["train"]["normal"] == 3
    data = load_dataset("liver", tmp_path / "BMAD")
    assert data.layout == "B-Liver" and data.root.name == "hist_DIY"
    assert data.counts()["train"]["normal"] == 6
    with pytest.raises(DataError, match="Could not find the BMAD retina set"):
        load_dataset("retina", tmp_path)
    # a generic folder name is accepted when it is the only candidate
    make_bmad_tree(tmp_path / "other" / "my_copy", "B-RESC", "retina")
    assert load_dataset("retina", tmp_path / "other").layout == "B-RESC"


def test_bmad_without_valid_and_with_empty_good_masks(tmp_path):
    root = make_bmad_tree(tmp_path, "A", "brain", valid=None, good_masks=True)
    data = load_dataset("brain", root)
    assert data.valid == [] and "no valid split on disk" in data.notes
    assert all(s.mask is None for s in data.test if s.label == 0)


def test_bmad_mask_named_with_mask_suffix_and_mixed_extensions(tmp_path):
    root = make_bmad_tree(tmp_path, "B", "liver")
    mask_dir = root / "test" / "Ungood" / "label"
    first = sorted(mask_dir.iterdir())[0]
    first.rename(mask_dir / f"{first.stem}_mask.png")
    img_dir = root / "train" / "good"
    for i, ext in enumerate([".jpg", ".JPEG", ".bmp", ".tif", ".tiff", ".PNG"]):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(
            img_dir / f"extra{i}{ext}", format={".JPEG": "JPEG", ".PNG": "PNG"}.get(ext))
    (img_dir / ".DS_Store").write_bytes(b"x")
    (img_dir / "notes.txt").write_text("ignored")
    data = load_dataset("liver", root)
    assert data.counts()["train"]["normal"] == 4 + 6
    _check_pairs(data)


def test_kind_aliases_and_unknown_kind(tmp_path):
    root = make_bmad_tree(tmp_path, "B-RESC", "retina")
    assert load_dataset("RESC", root).kind == "retina"
    with pytest.raises(DataError, match="Valid kinds"):
        load_dataset("visa", root)


def test_mvtec_extra_ground_truth_good_folder_verified(tmp_path):
    folder = make_mvtec_tree(tmp_path, "wood", n_good=2)
    for img in (folder / "test" / "good").iterdir():
        write_png(folder / "ground_truth" / "good" / f"{img.stem}_mask.png",
                  np.zeros((16, 16), np.uint8))
    assert load_dataset("mvtec", tmp_path, "wood").counts()["test"]["normal"] == 2
    shutil.rmtree(folder / "test" / "good")
    with pytest.raises(DataError, match="Mask without image"):
        load_dataset("mvtec", tmp_path, "wood")
