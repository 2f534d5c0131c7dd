"""Every bad input raises DataError naming the offending file or folder."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from multiad.data import DataError, check_dataset, load_dataset, preload
from multiad.data.check import check_mask_sizes
from multiad.data.testing import make_bmad_tree, make_mvtec_tree, write_png


@pytest.fixture()
def bottle(tmp_path):
    return make_mvtec_tree(tmp_path, "bottle", defects={"crack": 2})


def test_truncated_image_fails_at_preload(bottle):
    victim = bottle / "test" / "crack" / "001.png"
    victim.write_bytes(victim.read_bytes()[:40])
    data = load_dataset("mvtec", bottle.parent, "bottle")
    with pytest.raises(DataError, match=str(victim)):
        preload(data.test, size=8, progress=False)


def test_mvtec_mask_without_image(bottle):
    stray = write_png(bottle / "ground_truth" / "crack" / "007_mask.png",
                      np.zeros((16, 16), np.uint8))
    with pytest.raises(DataError, match="Mask without image") as info:
        load_dataset("mvtec", bottle.parent, "bottle")
    assert str(stray) in str(info.value)


def test_mvtec_image_without_mask(bottle):
    (bottle / "ground_truth" / "crack" / "001_mask.png").unlink()
    with pytest.raises(DataError, match="Image without mask") as info:
        load_dataset("mvtec", bottle.parent, "bottle")
    assert str(bottle / "test" / "crack" / "001.png") in str(info.value)


def test_mvtec_missing_mask_folder_and_orphan_mask_folder(bottle):
    shutil.move(bottle / "ground_truth" / "crack", bottle / "ground_truth" / "crak")
    with pytest.raises(DataError, match="No masks for the defect images"):
        load_dataset("mvtec", bottle.parent, "bottle")
    shutil.copytree(bottle / "ground_truth" / "crak", bottle / "ground_truth" / "crack")
    with pytest.raises(DataError, match="crak"):
        load_dataset("mvtec", bottle.parent, "bottle")


def test_mvtec_misnamed_mask(bottle):
    gt = bottle / "ground_truth" / "crack"
    (gt / "000_mask.png").rename(gt / "000.png")
    with pytest.raises(DataError, match="000.png"):
        load_dataset("mvtec", bottle.parent, "bottle")


def test_mask_of_different_size(bottle):
    bad = write_png(bottle / "ground_truth" / "crack" / "000_mask.png",
                    np.full((12, 16), 255, np.uint8))
    image = bottle / "test" / "crack" / "000.png"
    data = load_dataset("mvtec", bottle.parent, "bottle")
    with pytest.raises(DataError) as info:
        preload(data.test, size=8, progress=False)
    assert str(bad) in str(info.value) and str(image) in str(info.value)
    report = check_dataset("mvtec", bottle.parent, "bottle", check_image_sizes=True)
    assert not report.ok
    assert any(str(bad) in p and str(image) in p for p in report.problems)
    with pytest.raises(DataError) as info:
        check_mask_sizes(data)
    assert str(bad) in str(info.value) and str(image) in str(info.value)


def test_empty_splits(tmp_path):
    folder = make_mvtec_tree(tmp_path, "tile", n_train=0)
    with pytest.raises(DataError, match="No train/ folder"):
        load_dataset("mvtec", tmp_path, "tile")
    (folder / "train" / "good").mkdir(parents=True)
    with pytest.raises(DataError, match="Empty split") as info:
        load_dataset("mvtec", tmp_path, "tile")
    assert str(folder / "train" / "good") in str(info.value)
    shutil.rmtree(folder)
    make_mvtec_tree(tmp_path, "tile", n_good=0)
    with pytest.raises(DataError, match="No normal test images"):
        load_dataset("mvtec", tmp_path, "tile")
    root = make_bmad_tree(tmp_path / "b", "B", "brain", n_train=0)
    with pytest.raises(DataError, match="Missing train split"):
        load_dataset("brain", root)
    (root / "train" / "good").mkdir(parents=True)
    with pytest.raises(DataError, match="Empty split") as info:
        load_dataset("brain", root)
    assert "train" in str(info.value)


def test_unknown_category_lists_valid_and_present(tmp_path):
    make_mvtec_tree(tmp_path, "bottle")
    with pytest.raises(DataError) as info:
        load_dataset("mvtec", tmp_path, "bottel")
    msg = str(info.value)
    assert "bottel" in msg and "metal_nut" in msg and "bottle/" in msg
    with pytest.raises(DataError, match="No MVTec AD category given"):
        load_dataset("mvtec", tmp_path)
    with pytest.raises(DataError, match="texture, medical, loco"):
        load_dataset("synthetic", tmp_path, "wood")


def test_missing_root(tmp_path):
    for kind in ("mvtec", "brain", "folder"):
        with pytest.raises(DataError, match="nowhere"):
            load_dataset(kind, tmp_path / "nowhere", "bottle" if kind == "mvtec" else None)


def test_training_split_must_be_normal(tmp_path):
    folder = make_mvtec_tree(tmp_path, "wood")
    shutil.copytree(folder / "test" / "crack", folder / "train" / "crack")
    with pytest.raises(DataError, match="train/crack"):
        load_dataset("mvtec", tmp_path, "wood")
    root = make_bmad_tree(tmp_path / "b", "B", "brain")
    write_png(root / "train" / "Ungood" / "x.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(DataError, match="Anomalous images in the training split"):
        load_dataset("brain", root)


@pytest.mark.parametrize("layout", ["A", "B-Liver", "B-RESC"])
def test_bmad_unpaired_files(tmp_path, layout):
    root = make_bmad_tree(tmp_path, layout, "brain")
    data = load_dataset("brain", root)
    sample = next(s for s in data.test if s.label == 1)
    stray = sample.mask.with_name("zz_extra.png")
    shutil.copy(sample.mask, stray)
    with pytest.raises(DataError, match="Mask without image") as info:
        load_dataset("brain", root)
    assert str(stray) in str(info.value)
    stray.unlink()
    sample.mask.unlink()
    with pytest.raises(DataError, match="Image without mask") as info:
        load_dataset("brain", root)
    assert str(sample.image) in str(info.value)


def test_bmad_missing_mask_folder_and_duplicate_stems(tmp_path):
    root = make_bmad_tree(tmp_path, "A", "brain")
    shutil.rmtree(root / "test" / "Ungood" / "anomaly_mask")
    with pytest.raises(DataError, match="No mask folder"):
        load_dataset("brain", root)
    root = make_bmad_tree(tmp_path / "c", "B", "brain")
    img = next((root / "test" / "Ungood" / "img").iterdir())
    shutil.copy(img, img.with_suffix(".bmp"))
    with pytest.raises(DataError, match="share the stem"):
        load_dataset("brain", root)


def test_ambiguous_mask_folders(tmp_path):
    root = make_bmad_tree(tmp_path, "A", "brain")
    shutil.copytree(root / "test" / "Ungood" / "anomaly_mask", root / "test" / "Ungood" / "label")
    with pytest.raises(DataError, match="Several mask folders"):
        load_dataset("brain", root)


def test_check_sizes_decodes_every_image_so_a_truncated_one_is_reported(bottle):
    """Its header intact, a truncated PNG passes a header read; the check decodes fully
    (as training does), normal images without masks included."""
    victim = bottle / "train" / "good" / "000.png"
    raw = victim.read_bytes()
    victim.write_bytes(raw[:len(raw) - 30])
    from multiad.data.image_io import image_size

    assert image_size(victim)  # the header alone still reads
    report = check_dataset("mvtec", bottle.parent, "bottle", check_image_sizes=True)
    assert not report.ok and any(str(victim) in p for p in report.problems)
    assert check_dataset("mvtec", bottle.parent, "bottle").ok is not None  # counts only
