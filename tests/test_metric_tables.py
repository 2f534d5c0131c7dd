"""The all-metrics table and the per-image AUPIMO figure read what evaluate writes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd


def _run(tmp_path, method: str, seed: int, shift: float):
    from multiad.metrics import evaluate_test_set

    rng = np.random.default_rng(seed)
    maps = rng.random((12, 128, 128)).astype(np.float32)  # 8 normal: 131,072 pixels
    masks = np.zeros(maps.shape, bool)
    masks[:4, 40:70, 50:80] = True
    maps[masks] += shift
    labels = masks.reshape(12, -1).any(axis=1)
    metrics = evaluate_test_set(maps.reshape(12, -1).max(axis=1), labels, maps, masks)
    run = tmp_path / method / f"seed{seed}"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps({"metrics": metrics}))  # evaluate's layout
    return {"run": str(run), "dataset_id": "set", "method": method, "seed": seed}


def test_all_metrics_and_per_image_aupimo_come_from_the_runs(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from multiad.pipeline.metric_tables import (
        ALL_METRICS,
        all_metrics_table,
        aupimo_per_image,
        plot_aupimo,
    )

    df = pd.DataFrame([_run(tmp_path, "multiad", 0, 0.4), _run(tmp_path, "multiad", 1, 0.4),
                       _run(tmp_path, "padim", 0, 0.1)])
    table = all_metrics_table(df)
    assert list(table.columns) == ["dataset", "method", "seeds", *ALL_METRICS.values()]
    assert table.seeds.tolist() == [2, 1] and "±" in table.loc[0, "mAD"]
    assert all(v != "—" for v in table.loc[0, list(ALL_METRICS.values())])
    long = aupimo_per_image(df)
    assert len(long) == 3 * 4 and long.aupimo.between(0, 100).all()
    per = long.groupby("method").aupimo.mean()
    assert per["Multi-AD"] > per["PaDiM"]  # the larger shift overlaps better at low FPR
    assert plot_aupimo(df) is not None
