"""AUsPRO: hand-worked cases, a brute-force reference, saturation, overlaps, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from multiad.metrics import (
    UndefinedMetricError,
    aupro,
    auspro,
    auspro_per_name,
    auspro_report,
    auspro_result,
    saturation_area,
)


def brute_force_auspro(maps: np.ndarray, regions: list, saturation: list | None,
                       limit: float) -> float:
    """Loop over every distinct threshold; FPR and each region's capped overlap directly."""
    maps = np.asarray(maps, dtype=np.float64)
    regs, normal = [], np.ones(maps.shape, dtype=bool)
    for i, r in enumerate(regions):
        if r is None:
            continue
        r = np.asarray(r, dtype=bool).reshape(-1, *maps.shape[1:])
        for k in range(r.shape[0]):
            s = r[k].sum() if saturation is None else min(saturation[i][k], r[k].sum())
            regs.append((i, r[k], s))
        normal[i] &= ~r.any(axis=0)
    xs, ys = [0.0], [0.0]
    for t in np.unique(maps)[::-1]:
        pred = maps >= t
        xs.append((pred & normal).sum() / normal.sum())
        ys.append(np.mean([min((pred[i] & r).sum() / s, 1.0) for i, r, s in regs]))
    area = 0.0
    for i in range(1, len(xs)):
        x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
        if x0 >= limit:
            break
        if x1 > limit:  # linear interpolation at the limit
            y1 = y0 + (y1 - y0) * (limit - x0) / (x1 - x0)
            x1 = limit
        area += (x1 - x0) * (y0 + y1) / 2
    return area / limit


def _line(scores: list[float], region: list[int]) -> tuple[np.ndarray, list[np.ndarray]]:
    """One 1×n image and one region at the given pixel indices."""
    maps = np.array([[scores]])
    r = np.zeros((1, 1, len(scores)), dtype=bool)
    r[0, 0, region] = True
    return maps, [r]


def test_hand_worked_saturation_cap() -> None:
    # region {0.9, 0.7, 0.5, 0.3}, normals {0.8, 0.6, 0.4, 0.2}, saturation 2 px.
    # sPRO: t=0.9 → ½ (FPR 0); t=0.8 → FPR ¼; t=0.7 → 2/2 = 1 (capped from here on).
    # Curve (0,0) (0,½) (¼,½) (¼,1) … (1,1): area to L ≤ ¼ is L/2 → 0.5; to ½ it is
    # ⅛ + ¼ → 0.75; to 1 it is ⅛ + ¾ → 0.875.
    maps, regions = _line([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2], [0, 2, 4, 6])
    for limit, want in ((0.05, 0.5), (0.25, 0.5), (0.5, 0.75), (1.0, 0.875)):
        assert auspro(maps, regions, [[2]], limit) == pytest.approx(want, abs=1e-12)
        assert brute_force_auspro(maps, regions, [[2]], limit) == pytest.approx(want, abs=1e-12)
    # saturation = area (4 px): plain PRO, steps of ¼ at FPR 0, ¼, ½, ¾:
    # ¼·(¼ + ½ + ¾ + 1) = 0.625 (the 4 scattered pixels of one mask file are one region
    # here; AUPRO would see 4 connected components); a larger saturation is capped
    assert auspro(maps, regions, None, 1.0) == pytest.approx(0.625, abs=1e-12)
    assert auspro(maps, regions, [[4]], 1.0) == pytest.approx(0.625, abs=1e-12)
    assert auspro(maps, regions, [[400]], 1.0) == pytest.approx(0.625, abs=1e-12)  # capped


def test_hand_worked_fractional_saturation() -> None:
    # saturation 1.5 px: the first pixel adds 1/1.5 = ⅔, the second the remaining ⅓.
    # Curve (0,⅔) then (¼,⅔) → (¼,1): area to 1 = ¼·⅔ + ¾ = 11/12.
    maps, regions = _line([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2], [0, 2, 4, 6])
    assert auspro(maps, regions, [[1.5]], 1.0) == pytest.approx(11 / 12, abs=1e-12)
    assert auspro(maps, regions, [[1.5]], 0.1) == pytest.approx(2 / 3, abs=1e-12)


def test_hand_worked_overlapping_regions_of_one_image() -> None:
    # 2×4 image; R1 = (0,0),(0,1) scores {0.9, 0.6}; R2 = (0,1),(0,2) scores {0.6, 0.7}:
    # they share pixel (0,1). Normal pixels: the 5 outside R1 ∪ R2: {0.8, 0.5, 0.4, 0.3, 0.1}.
    # t=0.9: R1 ½, R2 0 → ¼ (FPR 0) · t=0.8: FPR ⅕ · t=0.7: R2 ½ → ½ · t=0.6: both 1 → 1.
    # Curve (0,¼) (⅕,¼) (⅕,1): area to 1 = ⅕·¼ + ⅘ = 0.85; to 0.2: 0.05/0.2 = ¼;
    # to 0.3: (0.05 + 0.1)/0.3 = ½.
    maps = np.array([[[0.9, 0.6, 0.7, 0.1], [0.8, 0.5, 0.4, 0.3]]])
    regions = np.zeros((2, 2, 4), dtype=bool)
    regions[0, 0, :2] = True
    regions[1, 0, 1:3] = True
    for limit, want in ((1.0, 0.85), (0.2, 0.25), (0.3, 0.5)):
        assert auspro(maps, [regions], None, limit) == pytest.approx(want, abs=1e-12)
        assert brute_force_auspro(maps, [regions], None, limit) == pytest.approx(want,
                                                                                abs=1e-12)
    # AUPRO sees one 8-connected region of 3 px: (0,⅓) (⅕,⅓) (⅕,1) → ⅕·⅓ + ⅘ = 13/15
    assert aupro(maps, regions.any(axis=0), 1.0) == pytest.approx(13 / 15, abs=1e-12)
    # the same two regions passed as a list of H×W masks
    assert auspro(maps, [[regions[0], regions[1]]], None, 1.0) == pytest.approx(0.85)


def test_fpr_counts_defect_free_pixels_of_anomalous_images_too() -> None:
    # image 0 is good: normals {0.4, 0.2}; image 1: region {0.9} and normal pixel {0.8}.
    # FPR over the 3 defect-free pixels: t=0.9 → sPRO 1 at FPR 0 → AUsPRO 1 for any limit;
    # lowering the region to 0.3: t=0.8 FPR ⅓, t=0.4 FPR ⅔, t=0.3 sPRO 1 →
    # curve (0,0) (⅔,0) (⅔,1) (1,1): area to 1 = ⅓.
    maps = np.array([[[0.4, 0.2]], [[0.9, 0.8]]])
    regions = [None, np.array([[[True, False]]])]
    assert auspro(maps, regions, None, 0.05) == pytest.approx(1.0, abs=1e-12)
    maps[1, 0, 0] = 0.3
    assert auspro(maps, regions, None, 1.0) == pytest.approx(1 / 3, abs=1e-12)
    assert auspro_result(maps, regions, None, 1.0).n_normal == 3


def test_matches_brute_force_random_with_ties_and_overlaps() -> None:
    rng = np.random.default_rng(0)
    checked = 0
    while checked < 80:
        n, h, w = int(rng.integers(1, 4)), int(rng.integers(2, 8)), int(rng.integers(2, 8))
        maps = rng.integers(0, int(rng.integers(2, 12)), (n, h, w)).astype(np.float32)
        regions, saturation = [], []
        for _ in range(n):
            k = int(rng.integers(0, 4))
            r = rng.random((k, h, w)) < rng.uniform(0.05, 0.5)
            r = r[r.any(axis=(1, 2))]  # regions are non-empty
            regions.append(r if len(r) else None)
            saturation.append([float(rng.choice([rng.uniform(0.3, 1.2) * m.sum(),
                                                 int(rng.integers(1, 6))])) for m in r])
        union = np.stack([np.zeros((h, w), bool) if r is None else r.any(axis=0)
                          for r in regions])
        if not union.any() or union.all():
            continue
        maps += union * rng.integers(0, 3)
        limit = float(rng.choice([0.05, 0.3, 1.0, rng.uniform(0.01, 1.0)]))
        sat = None if rng.random() < 0.3 else saturation
        ref = brute_force_auspro(maps, regions, sat, limit)
        assert auspro(maps, regions, sat, limit) == pytest.approx(ref, abs=1e-10)
        checked += 1


def test_saturation_equal_to_region_area_is_pro() -> None:
    # one connected, separated rectangle per mask file: AUsPRO with s = |R| equals AUPRO
    rng = np.random.default_rng(1)
    for trial in range(10):
        maps = rng.random((4, 16, 16))
        masks = np.zeros((4, 16, 16), dtype=bool)
        regions: list = [None] * 4
        for i in (1, 2, 3):
            r = np.zeros((2, 16, 16), dtype=bool)
            r[0, 1:1 + int(rng.integers(1, 5)), 2:2 + int(rng.integers(1, 6))] = True
            r[1, 9:9 + int(rng.integers(1, 6)), 8:8 + int(rng.integers(1, 7))] = True
            regions[i] = r[: 1 + trial % 2]
            masks[i] = regions[i].any(axis=0)
        maps[masks] += 0.3
        for limit in (0.05, 0.3, 1.0):
            want = aupro(maps, masks, limit)
            areas = [None if r is None else r.sum(axis=(1, 2)) for r in regions]
            assert auspro(maps, regions, None, limit) == pytest.approx(want, abs=1e-10)
            assert auspro(maps, regions, areas, limit) == pytest.approx(want, abs=1e-10)


def test_saturation_area_relative_and_absolute() -> None:
    # relative: ⌊threshold·area⌋ as the official script (int(...)), at least one pixel
    assert saturation_area(0.5, True, 7) == 3.0
    assert saturation_area(1.0, True, 7) == 7.0
    assert saturation_area(0.1, True, 5) == 1.0  # ⌊0.5⌋ = 0 would divide by zero
    # absolute: a pixel count at the original resolution, capped at the region's area
    assert saturation_area(6300, False, 10_000) == 6300.0
    assert saturation_area(6300, False, 100) == 100.0
    # evaluated at 256×256 instead of 1700×1000: scaled by the area ratio
    scale = 256 * 256 / (1700 * 1000)
    assert saturation_area(6300, False, 10_000, scale) == pytest.approx(6300 * scale)
    assert saturation_area(0.5, True, 7, scale) == 3.0  # relative: unaffected by the scale
    for bad in ((0.0, True, 5), (1.5, True, 5), (-1, False, 5), (float("nan"), False, 5),
                (10, False, 0), (10, False, 5, 0.0)):
        with pytest.raises(ValueError):
            saturation_area(*bad)


def test_relative_versus_absolute_thresholds_change_the_score() -> None:
    # region of 4 px {0.9, 0.7, 0.5, 0.3} among normals {0.8, 0.6, 0.4, 0.2}:
    # relative 0.5 → 2 px (0.875 to FPR 1, as the cap case); absolute 3 px:
    # (0,⅓) (¼,⅓) (¼,⅔) (½,⅔) (½,1): ¼·⅓ + ¼·⅔ + ½ = 0.75.
    maps, regions = _line([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2], [0, 2, 4, 6])
    rel = saturation_area(0.5, True, 4)
    absolute = saturation_area(3, False, 4)
    assert auspro(maps, regions, [[rel]], 1.0) == pytest.approx(0.875, abs=1e-12)
    assert auspro(maps, regions, [[absolute]], 1.0) == pytest.approx(0.75, abs=1e-12)


def test_input_forms_and_rows() -> None:
    rng = np.random.default_rng(2)
    maps = rng.random((3, 6, 7))
    r1 = np.zeros((1, 6, 7), dtype=bool)
    r1[0, 1:3, 2:5] = True
    r2 = np.zeros((6, 7), dtype=bool)  # a single H×W region
    r2[4, :4] = True
    regions = [None, r1, r2]
    sat = [None, [3], [2.5]]
    ref = brute_force_auspro(maps, regions, [[], [3], [2.5]], 0.3)
    assert auspro(maps, regions, sat, 0.3) == pytest.approx(ref, abs=1e-12)
    assert auspro(torch.from_numpy(maps)[:, None], [None, torch.from_numpy(r1), r2], sat,
                  0.3) == pytest.approx(ref, abs=1e-12)
    assert auspro(maps.astype(np.float32), regions, sat, 0.3) == pytest.approx(
        brute_force_auspro(maps.astype(np.float32), regions, [[], [3], [2.5]], 0.3), abs=1e-9)
    r = auspro_result(maps, regions, sat, 0.3, rows=[0, 2])
    assert (r.n_images, r.n_regions, r.n_normal) == (2, 1, 2 * 42 - 4)
    assert r.auspro == pytest.approx(brute_force_auspro(maps[[0, 2]], [None, r2], [[], [2.5]],
                                                        0.3), abs=1e-12)


def test_report_per_group() -> None:
    rng = np.random.default_rng(4)
    maps = rng.random((5, 8, 8))
    regions: list = [None, None]
    for i in range(3):
        r = np.zeros((1 + i % 2, 8, 8), dtype=bool)
        r[0, i:i + 3, 1:4] = True
        if len(r) == 2:
            r[1, 5:7, 2:8] = True
        regions.append(r)
        maps[i + 2][r.any(axis=0)] += 0.3
    groups = ["good", "good", "logical_anomalies", "structural_anomalies",
              "logical_anomalies"]
    rep = auspro_report(maps, regions, None, groups, 0.1)
    assert rep["auspro"] == pytest.approx(auspro(maps, regions, None, 0.1))
    assert rep["n_regions"] == 4 and rep["skipped"] == {}
    logical = auspro(maps[[0, 1, 2, 4]], [None, None, regions[2], regions[4]], None, 0.1)
    structural = auspro(maps[[0, 1, 3]], [None, None, regions[3]], None, 0.1)
    assert rep["per_group"] == {"logical_anomalies": pytest.approx(logical),
                                "structural_anomalies": pytest.approx(structural)}
    assert rep["mean"] == pytest.approx((logical + structural) / 2)
    # a group whose images lost every region (too small when resized): undefined, reported
    rep = auspro_report(maps, [*regions[:3], None, regions[4]], None, groups, 0.1)
    assert rep["per_group"]["structural_anomalies"] is None and rep["mean"] is None
    assert "no ground-truth region" in rep["skipped"]["structural_anomalies"]
    with pytest.raises(ValueError, match="group names"):
        auspro_report(maps, regions, None, groups[:4])


def test_per_defect_name_uses_single_name_images_and_all_good_ones() -> None:
    rng = np.random.default_rng(7)
    maps = rng.random((5, 8, 8))
    regions: list = [None, None]
    names: list = [[], []]
    for i, kinds in enumerate((["missing"], ["missing", "colour"], ["colour"])):
        r = np.zeros((len(kinds), 8, 8), dtype=bool)
        for k in range(len(kinds)):
            r[k, 2 * k + i:2 * k + i + 3, 1 + 3 * k:4 + 3 * k] = True
        regions.append(r)
        names.append(kinds)
        maps[i + 2][r.any(axis=0)] += 0.4
    sat = [None, None, [5.0], [9.0, 3.0], [4.0]]
    out = auspro_per_name(maps, regions, sat, names, [0, 1], 0.2)
    # by hand: each name's single-name images plus both good images, brute force
    missing = brute_force_auspro(maps[[0, 1, 2]], [None, None, regions[2]],
                                 [None, None, [5.0]], 0.2)
    colour = brute_force_auspro(maps[[0, 1, 4]], [None, None, regions[4]],
                                [None, None, [4.0]], 0.2)
    assert out == {"colour": {"auspro": pytest.approx(colour), "images": 1, "mixed": 1},
                   "missing": {"auspro": pytest.approx(missing), "images": 1, "mixed": 1}}
    # a name seen only in mixed images has no value of its own
    only_mixed = auspro_per_name(maps[:4], regions[:4], sat[:4], names[:4], [0, 1], 0.2)
    assert only_mixed["colour"] == {"auspro": None, "images": 0, "mixed": 1}
    # an anomalous image that lost its regions (resized away) is not a good one: only the
    # rows named good join each name's images
    lost = auspro_per_name(maps, [*regions[:4], None], [*sat[:4], None],
                           [*names[:4], []], [0, 1], 0.2)
    assert lost["missing"]["auspro"] == pytest.approx(missing)
    as_good = auspro_per_name(maps, [*regions[:4], None], [*sat[:4], None],
                              [*names[:4], []], [0, 1, 4], 0.2)
    assert as_good["missing"]["auspro"] != pytest.approx(missing)
    with pytest.raises(ValueError, match="name lists"):
        auspro_per_name(maps, regions, sat, names[:4], [0, 1])
    with pytest.raises(ValueError, match="listed as good"):
        auspro_per_name(maps, regions, sat, names, [0, 2])


def test_errors() -> None:
    maps = np.random.default_rng(0).random((2, 4, 4))
    region = np.zeros((1, 4, 4), dtype=bool)
    region[0, 0, :2] = True
    with pytest.raises(UndefinedMetricError, match="no ground-truth region"):
        auspro(maps, [None, None])
    with pytest.raises(UndefinedMetricError, match="no defect-free pixel"):
        auspro(maps[:1], [np.ones((1, 4, 4), dtype=bool)])
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="fpr_limit"):
            auspro(maps, [None, region], None, bad)
    with pytest.raises(ValueError, match="2 anomaly maps but 1 region"):
        auspro(maps, [region])
    with pytest.raises(ValueError, match="2 anomaly maps but 3 saturation"):
        auspro(maps, [None, region], [None, [1], [1]])
    with pytest.raises(ValueError, match="regions of image 1 have shape"):
        auspro(maps, [None, region[:, :3]])
    with pytest.raises(ValueError, match="region 1 of image 1 is empty"):
        auspro(maps, [None, np.concatenate([region, np.zeros_like(region)])])
    with pytest.raises(ValueError, match="1 regions but 2 saturation"):
        auspro(maps, [None, region], [None, [1, 2]])
    for sat in (0, -2, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="positive and finite"):
            auspro(maps, [None, region], [None, [sat]])
    nan_maps = maps.copy()
    nan_maps[0, 3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        auspro(nan_maps, [None, region])
    with pytest.raises(ValueError, match="N×H×W"):
        auspro(maps[:, :, :, None], [None, region])
