"""MVTec LOCO AD: the official layout in tiny fixtures, region masks, sPRO inputs, errors."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from multiad.data import DataError, LocoData, check_dataset, load_dataset, preload
from multiad.data.download import download_mvtec_loco, find_loco_root
from multiad.data.mvtec_loco import (
    LOCO_CATEGORIES,
    LocoDefect,
    loco_auspro,
    loco_regions,
    read_defects_config,
)
from multiad.data.tensors import cache_key, resize_mask
from multiad.data.testing import write_png
from multiad.metrics import aupro, auspro

H, W = 24, 32  # the LOCO images are not square either
DEFECTS = [
    {"defect_name": "missing_pushpin", "pixel_value": 255, "saturation_threshold": 40,
     "relative_saturation": False},
    {"defect_name": "broken", "pixel_value": 254, "saturation_threshold": 1.0,
     "relative_saturation": True},
    {"defect_name": "colour", "pixel_value": 253, "saturation_threshold": 0.5,
     "relative_saturation": True},
]
# test image -> its regions: (pixel value, rows, cols); the two regions of logical 000 overlap
REGIONS = {
    ("logical_anomalies", "000"): [(255, (2, 10), (3, 13)), (253, (6, 14), (8, 21))],
    ("logical_anomalies", "001"): [(255, (15, 21), (20, 31))],
    ("structural_anomalies", "000"): [(254, (10, 17), (5, 16))],
}


def _region(value: int, rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray:
    m = np.zeros((H, W), dtype=np.uint8)
    m[rows[0]:rows[1], cols[0]:cols[1]] = value
    return m


def make_loco(root: Path, category: str = "pushpins", seed: int = 0) -> Path:
    """``root/category`` in the official MVTec LOCO AD layout; returns the category folder."""
    rng = np.random.default_rng(seed)
    folder = root / category

    def image(path: Path) -> None:
        write_png(path, rng.integers(0, 256, (H, W, 3), dtype=np.uint8))

    for split, n in (("train", 3), ("validation", 2)):
        for i in range(n):
            image(folder / split / "good" / f"{i:03d}.png")
    for i in range(2):
        image(folder / "test" / "good" / f"{i:03d}.png")
    for (dtype, stem), regions in REGIONS.items():
        image(folder / "test" / dtype / f"{stem}.png")
        for k, region in enumerate(regions):
            write_png(folder / "ground_truth" / dtype / stem / f"{k:03d}.png", _region(*region))
    (folder / "defects_config.json").write_text(json.dumps(DEFECTS, indent=1))
    return folder


@pytest.fixture()
def loco(tmp_path: Path) -> Path:
    return make_loco(tmp_path)


def test_load_counts_labels_and_defects_config(loco: Path) -> None:
    data = load_dataset("mvtec_loco", loco.parent, "pushpins")
    assert isinstance(data, LocoData)
    assert (data.name, data.kind, data.layout, data.category) == (
        "mvtec_loco/pushpins", "mvtec_loco", "mvtec_loco", "pushpins")
    counts = data.counts()
    assert counts["train"] == {"normal": 3, "anomalous": 0, "total": 3, "defects": {"good": 3}}
    assert counts["valid"] == {"normal": 2, "anomalous": 0, "total": 2, "defects": {"good": 2}}
    assert counts["test"]["defects"] == {"good": 2, "logical_anomalies": 2,
                                         "structural_anomalies": 1}
    assert [s.defect for s in data.test] == ["good", "good", "logical_anomalies",
                                             "logical_anomalies", "structural_anomalies"]
    assert all(s.image.parent.name == "good" for s in data.valid)
    assert all(s.image.parent.parent.name == "validation" for s in data.valid)
    for s in data.test:
        assert (s.label == 1) == (s.defect != "good")
        if s.label == 0:
            assert s.mask is None and s.regions == ()
        else:  # one mask file per region, in ground_truth/<type>/<stem>/
            gdir = loco / "ground_truth" / s.defect / s.image.stem
            assert s.regions == tuple(sorted(gdir.glob("*.png"))) and s.mask == s.regions[0]
    assert len(data.test[2].regions) == 2
    assert data.defects_path == loco / "defects_config.json"
    assert data.defects[253] == LocoDefect("colour", 253, 0.5, True)
    assert data.defects[255].saturation_threshold == 40.0
    assert not data.defects[255].relative_saturation


def test_aliases_and_roots(loco: Path, tmp_path: Path) -> None:
    for kind in ("loco", "MVTec-LOCO", "mvtec_loco_ad", "mvtecloco"):
        assert load_dataset(kind, loco.parent, "pushpins").kind == "mvtec_loco"
    assert load_dataset("loco", loco).root == loco  # the category folder itself
    nested = make_loco(tmp_path / "x" / "mvtec_loco_anomaly_detection", "screw_bag")
    assert load_dataset("loco", tmp_path / "x", "screw_bag").root == nested


def test_union_masks_through_preload(loco: Path, tmp_path: Path) -> None:
    data = load_dataset("loco", loco)
    for size in (H, 16):
        split = preload(data.test, size=size, cache_dir=tmp_path / "cache", progress=False)
        for i, s in enumerate(data.test):
            union = np.zeros((H, W), dtype=bool)
            for region in REGIONS.get((s.defect, s.image.stem), []):
                union |= _region(*region) > 0
            assert torch.equal(split.masks[i], resize_mask(union, size))
        assert split.labels.tolist() == [0, 0, 1, 1, 1]
        assert split.defects == [s.defect for s in data.test]
    valid = preload(data.valid, size=16, progress=False)  # the validation split is usable
    assert len(valid) == 2 and not valid.masks.any()


def test_cache_key_covers_every_region_file(loco: Path) -> None:
    data = load_dataset("loco", loco)
    before = cache_key(data.test, 16)
    second = data.test[2].regions[1]
    write_png(second, _region(253, (6, 14), (8, 22)))  # a changed second region file
    assert cache_key(data.test, 16) != before


def test_region_masks_and_saturation_at_native_and_resized_resolution(loco: Path) -> None:
    data = load_dataset("loco", loco)
    native = loco_regions(data.test, data.defects, H, W)
    assert native.masks[:2] == [None, None] and native.dropped == []
    # logical 000: 8×10 = 80 px of value 255 (absolute 40 px) and 8×13 = 104 px of value 253
    # (relative 0.5 → ⌊52⌋); logical 001: 6×11 = 66 px (absolute 40); structural: 7×11 = 77
    # px (relative 1.0 → 77)
    assert native.saturation[2:] == [[40.0, 52.0], [40.0], [77.0]]
    assert native.defects[2:] == [["missing_pushpin", "colour"], ["missing_pushpin"],
                                  ["broken"]]
    assert native.masks[2].shape == (2, H, W)
    assert (native.masks[2][0] & native.masks[2][1]).sum() == 4 * 5  # the overlap
    # at 16×16 the absolute threshold scales by 256 / (24·32) = 1/3; relative ones apply to
    # the resized region's area
    small = loco_regions(data.test, data.defects, 16, 16)
    for i in (2, 3, 4):
        areas = small.masks[i].reshape(len(small.masks[i]), -1).sum(axis=1)
        want = [d.saturation_area(int(a), 256 / (H * W))
                for d, a in zip((data.defects[v] for v, *_ in REGIONS[
                    (data.test[i].defect, data.test[i].image.stem)]), areas, strict=True)]
        assert small.saturation[i] == want
    assert small.saturation[3] == [pytest.approx(40 / 3)]
    # a region too small for the evaluated resolution is dropped, not an empty region
    tiny = loco_regions(data.test, data.defects, 2, 2)
    assert all(m is None or m.any(axis=(1, 2)).all() for m in tiny.masks)
    assert len(tiny.dropped) + sum(0 if m is None else len(m) for m in tiny.masks) == 4


def test_loco_auspro_splits_logical_and_structural(loco: Path) -> None:
    data = load_dataset("loco", loco)
    rng = np.random.default_rng(3)
    maps = rng.random((5, 16, 16)).astype(np.float32)
    reg = loco_regions(data.test, data.defects, 16, 16)
    for i in (2, 3, 4):
        maps[i][reg.masks[i].any(axis=0)] += 0.4
    r = loco_auspro(data, torch.from_numpy(maps)[:, None])
    assert r["fpr_limit"] == 0.05 and r["resolution"] == [16, 16]
    assert r["n_regions"] == 4 and r["n_regions_dropped"] == 0 and r["skipped"] == {}
    assert r["auspro"] == pytest.approx(auspro(maps, reg.masks, reg.saturation), abs=1e-12)
    for g, rows in (("logical_anomalies", [0, 1, 2, 3]), ("structural_anomalies", [0, 1, 4])):
        ref = auspro(maps[rows], [reg.masks[i] for i in rows], [reg.saturation[i] for i in rows])
        assert r["per_group"][g] == pytest.approx(ref, abs=1e-12)
    assert r["mean"] == pytest.approx(np.mean(list(r["per_group"].values())), abs=1e-12)
    json.dumps(r)
    with pytest.raises(ValueError, match="5 anomaly maps"):
        loco_auspro(data, maps[:4])


def test_pro_over_mask_files_differs_from_aupro_where_regions_overlap(loco: Path) -> None:
    data = load_dataset("loco", loco)
    reg = loco_regions(data.test, data.defects, H, W)
    rng = np.random.default_rng(0)
    maps = rng.random((5, H, W))
    union = np.stack([np.zeros((H, W), bool) if m is None else m.any(axis=0)
                      for m in reg.masks])
    maps[union] += 0.5
    # the two overlapping files of logical 000 are one connected component for AUPRO
    assert auspro(maps, reg.masks, None, 0.3) != pytest.approx(aupro(maps, union, 0.3))


def test_check_dataset_reports_loco(loco: Path) -> None:
    report = check_dataset("mvtec_loco", loco.parent, "pushpins", check_image_sizes=True)
    assert report.layout == "mvtec_loco" and not report.problems
    assert report.counts["valid"]["total"] == 2
    # a tiny copy is not the release: every split's count is named against the release's
    found = {(d.split, d.what): (d.found, d.expected) for d in report.differences}
    assert found[("train", "normal")] == (3, "372") and found[("valid", "normal")] == (2, "69")
    assert found[("test", "defect:logical_anomalies")] == (2, "91") and not report.ok
    shutil.rmtree(loco / "ground_truth" / "structural_anomalies" / "000")
    report = check_dataset("mvtec_loco", loco.parent, "pushpins")
    assert not report.ok and "No ground truth" in report.problems[0]


# ----------------------------------------------------------------- broken copies


def _fails(folder: Path, *patterns: str) -> str:
    with pytest.raises(DataError) as info:
        load_dataset("mvtec_loco", folder)
    for p in patterns:
        assert p in str(info.value), str(info.value)
    return str(info.value)


def test_missing_or_empty_ground_truth_folder(loco: Path) -> None:
    gdir = loco / "ground_truth" / "logical_anomalies" / "001"
    for p in gdir.iterdir():
        p.unlink()
    _fails(loco, "No ground truth for the anomalous image",
           str(loco / "test" / "logical_anomalies" / "001.png"), "is empty", "000.png")
    gdir.rmdir()
    _fails(loco, str(gdir), "does not exist", "re-extract")
    shutil.rmtree(loco / "ground_truth")
    _fails(loco, "No ground_truth/ folder", str(loco))


def test_mask_pixel_value_not_in_defects_config(loco: Path) -> None:
    mask = loco / "ground_truth" / "structural_anomalies" / "000" / "000.png"
    write_png(mask, _region(7, (10, 17), (5, 16)))
    _fails(loco, str(mask), "pixel value 7", "not a pixel_value in defects_config.json",
           "255 (missing_pushpin)")


def test_masks_with_several_values_or_none(loco: Path) -> None:
    mask = loco / "ground_truth" / "logical_anomalies" / "001" / "000.png"
    two = _region(255, (15, 21), (20, 31))
    two[15, 20] = 254
    write_png(mask, two)
    _fails(loco, str(mask), "several defect values [254, 255]")
    write_png(mask, np.zeros((H, W), dtype=np.uint8))
    _fails(loco, str(mask), "is empty")
    rgb = np.zeros((H, W, 3), dtype=np.uint8)
    rgb[0, 0] = (255, 0, 0)
    write_png(mask, rgb)
    _fails(loco, str(mask), "colour image")


def test_mask_size_differs_from_image(loco: Path) -> None:
    mask = loco / "ground_truth" / "logical_anomalies" / "000" / "001.png"
    big = np.zeros((H, W + 2), dtype=np.uint8)
    big[6:14, 8:21] = 253
    write_png(mask, big)
    _fails(loco, str(mask), "34x24", "32x24", str(loco / "test" / "logical_anomalies" / "000.png"))


def test_missing_or_malformed_defects_config(loco: Path) -> None:
    cfg = loco / "defects_config.json"
    cfg.unlink()
    _fails(loco, "Missing", str(cfg), "defects_config.json", "re-extract")
    cases = {
        "[": "Cannot read",
        "{}": "non-empty JSON list",
        json.dumps([{"defect_name": "a", "pixel_value": 255}]): "entry 0 lacks "
                                                                "saturation_threshold",
        json.dumps([dict(DEFECTS[0], pixel_value=0)]): "pixel_value must be an integer",
        json.dumps([dict(DEFECTS[1], saturation_threshold=1.5)]): "a fraction in (0, 1]",
        json.dumps([dict(DEFECTS[0], saturation_threshold=-3)]): "a positive pixel count",
        json.dumps([dict(DEFECTS[0], relative_saturation="no")]): "true or false",
        json.dumps([DEFECTS[0], dict(DEFECTS[1], pixel_value=255)]): "used by both",
    }
    for text, message in cases.items():
        cfg.write_text(text)
        _fails(loco, str(cfg), message)
        with pytest.raises(DataError, match="defects_config|Cannot read"):
            read_defects_config(cfg)


def test_layout_errors(loco: Path, tmp_path: Path) -> None:
    orphan = loco / "ground_truth" / "logical_anomalies" / "007"
    write_png(orphan / "000.png", _region(255, (0, 2), (0, 2)))
    _fails(loco, "Ground truth without image", str(orphan))
    shutil.rmtree(orphan)

    stray = loco / "ground_truth" / "logical_anomalies" / "001_mask.png"
    write_png(stray, _region(255, (0, 2), (0, 2)))
    _fails(loco, str(stray), "lies directly in", "kind='folder'")
    stray.unlink()

    odd = loco / "test" / "crack"
    write_png(odd / "000.png", np.zeros((H, W, 3), dtype=np.uint8))
    _fails(loco, "Unexpected folder", str(odd), "logical_anomalies")
    shutil.rmtree(odd)

    shutil.rmtree(loco / "validation")
    _fails(loco, "No validation/ folder", str(loco))

    shutil.rmtree(loco / "test" / "structural_anomalies")
    shutil.rmtree(loco / "ground_truth" / "structural_anomalies")
    make_loco(tmp_path / "other")  # the first fixture is broken from here on
    with pytest.raises(DataError, match="Unknown MVTec LOCO AD category 'bottle'"):
        load_dataset("loco", tmp_path / "other", "bottle")
    with pytest.raises(DataError, match="No MVTec LOCO AD category given"):
        load_dataset("loco", tmp_path / "other")
    with pytest.raises(DataError, match="does not exist"):
        load_dataset("loco", tmp_path / "nowhere", "pushpins")
    with pytest.raises(DataError, match="category folder .*juice_bottle not found"):
        load_dataset("loco", tmp_path / "other", "juice_bottle")


def test_download_from_a_tiny_local_archive(tmp_path: Path) -> None:
    entries = {f"{c}/train/good/000.png": b"p" for c in LOCO_CATEGORIES}
    entries["license.txt"] = b"CC BY-NC-SA 4.0"
    archive = tmp_path / "loco.tar.xz"
    with tarfile.open(archive, "w:xz") as tf:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    root = download_mvtec_loco(tmp_path / "data", url=archive.as_uri(), sha256=digest,
                               progress=False)
    assert root == tmp_path / "data" and find_loco_root(root) == root
    assert (root / ".multiad_download.json").is_file()
    assert not (root / "mvtec_loco_anomaly_detection.tar.xz").exists()
    assert download_mvtec_loco(root, url="file:///nonexistent", progress=False) == root


@pytest.mark.slow
def test_evaluate_writes_the_auspro_of_a_loco_test_split(loco: Path, offline_config,
                                                         tmp_path: Path, monkeypatch) -> None:
    """A run evaluated on a LOCO test split reports AUsPRO next to the usual metrics."""
    import multiad.evaluate as ev
    from multiad.train import train

    cfg = offline_config("padim")  # fitted, not trained: fast
    train(cfg, tmp_path / "r", progress=False)
    data = load_dataset("loco", loco)
    split = preload(data.test, size=cfg.data.image_size, progress=False)
    monkeypatch.setattr(ev, "load_split", lambda cfg, which, progress: (data, split))
    result = ev.evaluate(tmp_path / "r", device="cpu", progress=False, max_overlays=1,
                         save_maps=False)
    m = result["metrics"]
    assert sorted(m["per_defect"]) == ["logical_anomalies", "structural_anomalies"]
    assert sorted(m["auspro"]["per_group"]) == ["logical_anomalies", "structural_anomalies"]
    assert m["auspro"]["n_regions"] == 4 and 0 <= m["auspro"]["mean"] <= 1
    assert m["auspro"]["resolution"] == [cfg.data.image_size] * 2
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["metrics"]["auspro"] == (
        m["auspro"])


def test_expected_counts_add_up_to_the_release() -> None:
    from multiad.data.expected import LOCO_COUNTS, expected_counts

    assert set(LOCO_COUNTS) == set(LOCO_CATEGORIES)
    assert sum(t for t, _, _ in LOCO_COUNTS.values()) == 1772
    assert sum(v for _, v, _ in LOCO_COUNTS.values()) == 304
    assert sum(sum(c.values()) for _, _, c in LOCO_COUNTS.values()) == 1568
    exp = expected_counts("mvtec_loco", "juice_bottle")
    assert str(exp["test"]["anomalous"]) == "236" and str(exp["valid"]["normal"]) == "54"
