"""The command line end to end: make-synthetic → train → evaluate → predict → check-data."""

from __future__ import annotations

import csv
import json

import pytest

from multiad.cli import main


def test_cli_end_to_end(tmp_path, capsys):
    root = tmp_path / "synthetic"
    assert main(["make-synthetic", "texture", "--root", str(root), "--size", "64"]) == 0
    # shrink the default-size set the command wrote: the CLI path is what is tested here
    run = tmp_path / "run"
    args = ["--data", "synthetic", "--root", str(root), "--category", "texture",
            "--image-size", "32", "--epochs", "1", "--teacher-weights", "random",
            "--device", "cpu", "--set", "train.batch_size=16", "--out", str(run)]
    assert main(["-q", "train", *args]) == 0
    assert main(["-q", "evaluate", str(run), "--device", "cpu", "--max-overlays", "3"]) == 0
    out = capsys.readouterr().out
    assert "image_auroc=" in out and "teacher: wide_resnet50_2, random" in out

    result = json.loads((run / "metrics.json").read_text())
    m = result["metrics"]
    for key in ("image_auroc", "pixel_auroc", "aupro", "image_f1_max"):
        assert 0.0 <= m[key] <= 1.0, key
    assert set(m["per_defect"]) >= {"scratch", "hole", "stain"}
    assert result["teacher"]["kind"] == "random"
    assert result["seed"] == 0 and result["config"]["data"]["image_size"] == 32
    prov = result["provenance"]
    assert {"commit", "torch", "device", "multiad"} <= set(prov)
    assert result["data"]["counts"]["train"]
    assert (run / "maps.npz").exists() and (run / "heatmaps" / "examples.png").exists()
    assert len(list((run / "heatmaps").glob("*.png"))) == 1 + 3

    images = root / "texture" / "test" / "scratch"
    pred = tmp_path / "pred"
    assert main(["-q", "predict", str(run), str(images), "--out", str(pred),
                 "--device", "cpu"]) == 0
    rows = list(csv.DictReader((pred / "scores.csv").open()))
    assert len(rows) == len(list(images.glob("*.png")))
    assert all((pred / r["overlay"]).exists() for r in rows)

    assert main(["check-data", "--data", "synthetic", "--root", str(root),
                 "--category", "texture"]) == 0


def test_cli_errors_are_one_clear_line(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert "model.pt" in err and "Traceback" not in err
    code = main(["train", "--data", "mvtec", "--root", str(tmp_path), "--category", "bottle",
                 "--out", str(tmp_path / "r"), "--teacher-weights", "random"])
    assert code == 2
    assert str(tmp_path) in capsys.readouterr().err


def test_cli_help_lists_commands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for cmd in ("train", "evaluate", "predict", "make-synthetic", "check-data"):
        assert cmd in out


def test_cli_folder_run_needs_no_category_and_takes_a_backbone(tmp_path, capsys):
    """A user's folder in MVTec layout, the offline pretrained backbone: metrics.json with
    the three headline metrics (the synthetic default category must not leak in)."""
    from multiad.data.synthetic import make_synthetic

    make_synthetic("texture", tmp_path, seed=0, size=64, n_train=6, n_test_good=3,
                   n_test_per_defect=2)
    run = tmp_path / "run"
    assert main(["-q", "run", "--data", "folder", "--root", str(tmp_path / "texture"),
                 "--backbone", "efficientnet_lite0", "--image-size", "64", "--epochs", "1",
                 "--device", "cpu", "--out", str(run)]) == 0
    out = capsys.readouterr().out
    assert "teacher: efficientnet_lite0, imagenet" in out
    result = json.loads((run / "metrics.json").read_text())
    assert {"image_auroc", "pixel_auroc", "aupro"} <= set(result["metrics"])
    assert result["config"]["data"]["category"] is None
    assert result["teacher"]["backbone"] == "efficientnet_lite0"
    assert result["teacher"]["quality"] == "offline" and result["teacher"]["sha256"]
