"""Shared fixtures: a tiny synthetic dataset and a tiny, fast configuration."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MULTIAD_OFFLINE", "1")  # tests never download


@pytest.fixture(scope="session")
def tiny_texture_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic texture set (64 px) in MVTec layout; its root for kind=synthetic."""
    from multiad.data.synthetic import make_synthetic

    root = tmp_path_factory.mktemp("synthetic")
    make_synthetic("texture", root, seed=0, size=64, n_train=10, n_test_good=4,
                   n_test_per_defect=2)
    return root


@pytest.fixture()
def tiny_config(tiny_texture_root: Path, tmp_path: Path):
    """A RunConfig that runs the real code paths quickly on the CPU."""
    from multiad.config import RunConfig

    return RunConfig().with_overrides([
        "data.kind=synthetic", f"data.root={tiny_texture_root}", "data.category=texture",
        "data.image_size=32", f"data.cache_dir={tmp_path / 'cache'}",
        "teacher.weights=random", "train.epochs=2", "train.batch_size=4",
        "train.device=cpu", "train.eval_batch_size=8",
    ])


@pytest.fixture()
def offline_config(tiny_texture_root: Path, tmp_path: Path):
    """A factory of RunConfigs for any method on the tiny texture set at 64 px with the
    pretrained offline backbone: ``offline_config("padim", "train.epochs=2")``."""
    from multiad.config import RunConfig

    def make(method: str, *extra: str):
        return RunConfig().with_overrides([
            f"method={method}", "teacher.backbone=efficientnet_lite0",
            "teacher.weights=imagenet", "data.kind=synthetic", f"data.root={tiny_texture_root}",
            "data.category=texture", "data.image_size=64",
            f"data.cache_dir={tmp_path / 'cache'}", "train.device=cpu", *extra])

    return make


@pytest.fixture
def resumed_equals_uninterrupted(tmp_path: Path):
    """Train ``cfg`` for its epochs in one go and again as one epoch + a resume; assert the
    saved networks are bit-identical; return ``load_trained`` of the uninterrupted run.
    ``interrupted=True``: the second run is stopped after epoch 1 (an exception) instead of
    being planned as a 1-epoch run — for a schedule that depends on the planned epochs.
    ``rtol``/``atol``: for a network whose CPU kernels round differently from one process
    to the next (never more than a last bit)."""
    import torch

    from multiad.torch_files import load_torch
    from multiad.train import load_trained, train

    class Stop(Exception):
        pass

    def stop_after_first(epoch: int) -> None:
        if epoch == 1:
            raise Stop

    def check(cfg, interrupted: bool = False, rtol: float = 0.0, atol: float = 0.0):
        train(cfg, tmp_path / "full", progress=False)
        if interrupted:
            with pytest.raises(Stop):
                train(cfg, tmp_path / "split", progress=False, on_epoch_end=stop_after_first)
        else:
            train(cfg.with_overrides(["train.epochs=1", "train.keep_checkpoint=true"]),
                  tmp_path / "split", progress=False)
        train(cfg, tmp_path / "split", progress=False)  # resumes after epoch 1
        a = load_torch(tmp_path / "full" / "model.pt")
        b = load_torch(tmp_path / "split" / "model.pt")
        for key in (k for k in a if k != "meta"):
            for name, v in a[key].items():
                if not isinstance(v, torch.Tensor):
                    continue  # records (e.g. how a teacher was made), not weights
                torch.testing.assert_close(v, b[key][name], rtol=rtol, atol=atol,
                                           msg=lambda m, k=key, n=name: f"{k}.{n}: {m}")
        return load_trained(tmp_path / "full")

    return check
