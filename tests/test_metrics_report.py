"""evaluate_test_set: structure, skip reasons, per-defect breakdown."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

from multiad.metrics import (
    aupro,
    auroc,
    evaluate_test_set,
    f1_max,
    f1_max_threshold,
    pixel_auroc,
)
from multiad.metrics.report import METRIC_KEYS


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    labels = np.array([0] * 8 + [1] * 7)
    defects = ["good"] * 8 + ["crack"] * 4 + ["hole"] * 3
    maps = rng.random((15, 12, 12)).astype(np.float32)
    masks = np.zeros((15, 12, 12), dtype=bool)
    for i in range(8, 15):
        y, x = rng.integers(0, 9, 2)
        masks[i, y:y + 3, x:x + int(rng.integers(1, 4))] = True
    maps[masks] += 0.5
    scores = maps.reshape(15, -1).max(axis=1) + rng.normal(0, 0.2, 15)
    return scores, labels, maps, masks, defects


def test_structure_and_values() -> None:
    scores, labels, maps, masks, defects = _data()
    r = evaluate_test_set(scores, labels, maps, masks, defects)
    json.dumps(r)  # JSON-serialisable
    assert set(r) == set(METRIC_KEYS) | {"per_defect", "aupimo_per_image"}
    assert (r["n_images"], r["n_normal"], r["n_anomalous"]) == (15, 8, 7)
    assert r["image_auroc"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    f, t = f1_max_threshold(scores, labels)
    assert (r["image_f1_max"], r["image_f1_threshold"]) == (f, t)
    assert r["pixel_auroc"] == pytest.approx(pixel_auroc(maps, masks), abs=1e-12)
    assert r["aupro"] == pytest.approx(aupro(maps, masks), abs=1e-12)
    assert r["n_pixels"] == maps.size and r["n_anomalous_pixels"] == int(masks.sum())
    assert r["image_ap"] == pytest.approx(average_precision_score(labels, scores), abs=1e-12)
    assert r["pixel_ap"] == pytest.approx(average_precision_score(masks.ravel(), maps.ravel()),
                                          abs=1e-12)
    assert r["pixel_f1_max"] == pytest.approx(f1_max(maps.ravel(), masks.ravel()), abs=1e-12)
    mad = [r[k] for k in ("image_auroc", "image_ap", "image_f1_max", "pixel_auroc",
                          "pixel_ap", "pixel_f1_max", "aupro")]
    assert r["mad"] == pytest.approx(np.mean(mad), abs=1e-12)
    # 15 maps of this size hold too few normal pixels for an FPR of 1e-5: said, not guessed
    assert r["aupimo"] is None and "100,000 normal-image pixels" in r["skipped"]["aupimo"]
    assert r["n_regions"] == 7 and set(r["skipped"]) == {"aupimo"} and r["fpr_limit"] == 0.3
    for k in ("image_auroc", "image_f1_max", "image_f1_threshold", "pixel_auroc", "aupro"):
        assert type(r[k]) is float
    for k in ("n_images", "n_pixels", "n_anomalous_pixels", "n_regions"):
        assert type(r[k]) is int


def test_per_defect_breakdown() -> None:
    scores, labels, maps, masks, defects = _data(1)
    r = evaluate_test_set(scores, labels, maps, masks, defects, fpr_limit=0.2)
    assert sorted(r["per_defect"]) == ["crack", "hole"]  # "good" images are normal
    for name, idx in (("crack", np.r_[0:8, 8:12]), ("hole", np.r_[0:8, 12:15])):
        d = r["per_defect"][name]
        assert set(d) == set(METRIC_KEYS)
        assert (d["n_images"], d["n_normal"], d["n_anomalous"]) == (len(idx), 8, len(idx) - 8)
        assert d["image_auroc"] == pytest.approx(auroc(scores[idx], labels[idx]), abs=1e-12)
        assert d["image_f1_max"] == f1_max_threshold(scores[idx], labels[idx])[0]
        assert d["pixel_auroc"] == pytest.approx(pixel_auroc(maps[idx], masks[idx]), abs=1e-12)
        assert d["aupro"] == pytest.approx(aupro(maps[idx], masks[idx], 0.2), abs=1e-12)
        assert d["fpr_limit"] == 0.2


def test_single_defect_type_equals_overall() -> None:
    scores, labels, maps, masks, _ = _data(2)
    r = evaluate_test_set(scores, labels, maps, masks, ["good"] * 8 + ["Ungood"] * 7)
    d = r["per_defect"]["Ungood"]
    assert {k: d[k] for k in METRIC_KEYS} == {k: r[k] for k in METRIC_KEYS}


def test_skip_reasons() -> None:
    scores, labels, maps, masks, defects = _data(3)
    r = evaluate_test_set(scores, labels)
    assert r["pixel_auroc"] is None and r["aupro"] is None
    assert "no anomaly maps" in r["skipped"]["pixel_auroc"]
    assert r["per_defect"] == {}
    r = evaluate_test_set(scores, labels, maps, None, defects)
    assert "no ground-truth masks" in r["skipped"]["aupro"]
    assert r["per_defect"]["crack"]["pixel_auroc"] is None
    r = evaluate_test_set(scores, labels, maps, np.zeros_like(masks))
    assert r["pixel_auroc"] is None and r["aupro"] is None
    assert "no anomalous pixel" in r["skipped"]["pixel_auroc"]
    assert r["n_anomalous_pixels"] == 0 and r["image_auroc"] is not None
    normal = labels == 0
    r = evaluate_test_set(scores[normal], labels[normal], maps[normal], masks[normal])
    assert r["image_auroc"] is None and "only one class" in r["skipped"]["image_auroc"]
    assert r["image_f1_max"] is None and "image_f1_max" in r["skipped"]
    json.dumps(r)


def test_torch_inputs_and_validation() -> None:
    scores, labels, maps, masks, defects = _data(4)
    ref = evaluate_test_set(scores, labels, maps, masks, defects)
    r = evaluate_test_set(torch.from_numpy(scores), torch.from_numpy(labels),
                          torch.from_numpy(maps), torch.from_numpy(masks)[:, None].float(),
                          defects, device="cpu")
    assert r == ref
    with pytest.raises(ValueError, match="labels"):
        evaluate_test_set(scores, labels[:-1])
    with pytest.raises(ValueError, match="anomaly maps"):
        evaluate_test_set(scores, labels, maps[:-1], masks[:-1])
    with pytest.raises(ValueError, match="defect names"):
        evaluate_test_set(scores, labels, defects=defects[:-1])


def test_time_pixel_metrics_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    from multiad.metrics import time_pixel_metrics
    from multiad.metrics.bench import main

    r = time_pixel_metrics(6, 24, "cpu", seed=1)
    assert r["n_pixels"] == 6 * 24 * 24 and 0.0 <= r["aupro"] <= 1.0
    assert r["pixel_auroc_s"] >= 0.0 and r["aupro_s"] >= 0.0
    assert main(["--n-images", "4", "--size", "16", "--shift", "0"]) == 0
    assert json.loads(capsys.readouterr().out)["n_images"] == 4
