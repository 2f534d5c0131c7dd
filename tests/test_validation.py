"""The label-free validation: held-out normal training images with pasted anomalies."""

from __future__ import annotations

import csv

import pytest
import torch

from multiad.engine.validation import hold_out, holdout_count
from multiad.torch_files import load_torch
from multiad.train import load_trained, train


def _images(n: int = 10, size: int = 64) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)


def test_holdout_count_keeps_one_and_refuses_to_hold_out_everything():
    assert holdout_count(10, 0.0) == 0
    assert holdout_count(10, 0.01) == 1
    assert holdout_count(40, 0.15) == 6
    with pytest.raises(ValueError, match="leave none to train on"):
        holdout_count(2, 0.9)


def test_held_out_images_are_never_trained_and_pairs_are_deterministic():
    images = _images()
    train_a, held_a = hold_out(images, 0.3, seed=1)
    train_b, held_b = hold_out(images, 0.3, seed=1)
    assert torch.equal(train_a, train_b) and torch.equal(held_a.images, held_b.images)
    assert torch.equal(held_a.masks, held_b.masks)
    k = 3
    assert len(train_a) == 7 and len(held_a.images) == 2 * k
    assert held_a.labels.tolist() == [0] * k + [1] * k
    normal, pasted = held_a.images[:k], held_a.images[k:]
    rows = {bytes(im.numpy()) for im in images}
    trained = {bytes(im.numpy()) for im in train_a}
    assert all(bytes(im.numpy()) in rows - trained for im in normal)  # disjoint from training
    assert not held_a.masks[:k].any() and all(m.any() for m in held_a.masks[k:])
    changed = (pasted != normal).any(dim=1)
    assert not (changed & ~held_a.masks[k:]).any()  # pixels change only inside the masks
    _, held_c = hold_out(images, 0.3, seed=2)
    assert not torch.equal(held_a.images, held_c.images)


def test_no_holdout_trains_on_every_image():
    images = _images()
    kept, held = hold_out(images, 0.0, seed=0)
    assert kept is images and held is None


def _val_rows(run):
    with open(run / "losses.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_a_validated_run_records_its_curve_and_trains_as_without_the_checks(tiny_config,
                                                                           tmp_path):
    cfg = tiny_config.with_overrides(["train.holdout=0.2", "train.epochs=2"])
    train(cfg, tmp_path / "each", progress=False)
    train(cfg.with_overrides(["train.validate_every=5"]), tmp_path / "last", progress=False)
    rows = _val_rows(tmp_path / "each")
    assert [r["epoch"] for r in rows] == ["1", "2"]
    for r in rows:
        assert 0.0 <= float(r["val_image_auroc"]) <= 1.0
        assert 0.0 <= float(r["val_pixel_auroc"]) <= 1.0
    last = _val_rows(tmp_path / "last")
    assert last[0]["val_image_auroc"] == "" and last[1]["val_image_auroc"] != ""
    _, _, meta = load_trained(tmp_path / "each")
    assert meta["images_trained"] == 8 and meta["images_validated"] == 2
    a = load_torch(tmp_path / "each" / "model.pt")
    b = load_torch(tmp_path / "last" / "model.pt")
    for k in a["student"]:  # validating (eval mode, Ψ calibrated) leaves training alone
        assert torch.equal(a["student"][k], b["student"][k]), k


def test_a_run_that_holds_out_is_another_run(tiny_config, tmp_path):
    from multiad.config import RunConfigMismatch

    train(tiny_config.with_overrides(["train.epochs=1"]), tmp_path / "r", progress=False)
    with pytest.raises(RunConfigMismatch):
        train(tiny_config.with_overrides(["train.epochs=1", "train.holdout=0.2"]),
              tmp_path / "r", progress=False)


def test_resume_with_validation_equals_uninterrupted(tiny_config, resumed_equals_uninterrupted):
    resumed_equals_uninterrupted(tiny_config.with_overrides(["train.holdout=0.2"]))


@pytest.mark.parametrize("method", ["stfpm", "rd4ad", "skip_ts", "simplenet", "mkd"])
def test_every_trained_method_is_validated_the_same_way(method, offline_config, tmp_path):
    cfg = offline_config(method, "train.epochs=1", "train.batch_size=4", "train.holdout=0.2")
    train(cfg, tmp_path / method, progress=False)
    (row,) = _val_rows(tmp_path / method)
    assert 0.0 <= float(row["val_image_auroc"]) <= 1.0
