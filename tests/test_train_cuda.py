"""Training on CUDA: the graphed step trains like the eager one (run on a GPU machine)."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from multiad.train import load_trained, train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def _cuda(cfg, *extra):
    return cfg.with_overrides(["train.device=cuda", "train.epochs=3", *extra])


def test_cuda_graph_training_matches_eager(tiny_config, tmp_path):
    """Same init, same batches: the per-epoch losses agree within bf16 tolerance and the
    partial last batch (10 images, batch 4) runs eagerly next to the graph."""
    eager = _cuda(tiny_config)
    graphed = _cuda(tiny_config, "train.cuda_graph=true")
    train(eager, tmp_path / "eager", progress=False)
    train(graphed, tmp_path / "graphed", progress=False)
    a = pd.read_csv(tmp_path / "eager" / "losses.csv")
    b = pd.read_csv(tmp_path / "graphed" / "losses.csv")
    for key in ("L_G", "L_S", "L_D"):
        rel = ((a[key] - b[key]).abs() / a[key].abs()).max()
        assert rel < 0.03, (key, a[key].tolist(), b[key].tolist())
    model, cfg, _ = load_trained(tmp_path / "graphed", "cuda")
    assert cfg.train.cuda_graph and bool(model.mff.calibrated)


def test_cuda_graph_run_resumes(tiny_config, tmp_path):
    cfg = _cuda(tiny_config, "train.cuda_graph=true", "train.keep_checkpoint=true")
    train(cfg.with_overrides(["train.epochs=1"]), tmp_path / "run", progress=False)
    train(cfg, tmp_path / "run", progress=False)
    losses = pd.read_csv(tmp_path / "run" / "losses.csv")
    assert list(losses.epoch) == [1, 2, 3] and losses.L_G.notna().all()
