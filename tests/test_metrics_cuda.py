"""CUDA code paths give the CPU results (skipped without a GPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from multiad.metrics import aupro, auroc, evaluate_test_set, pixel_auroc
from multiad.metrics.bench import synthetic_maps

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.mark.parametrize("shift", [0.0, 0.3])
@pytest.mark.parametrize("chunk", [997, 1 << 25])
def test_cuda_matches_cpu(shift: float, chunk: int) -> None:
    maps, masks = synthetic_maps(40, 64, seed=5, shift=shift, anomalous_fraction=0.6)
    maps = torch.floor(maps * 50)  # ties
    ref_pa = roc_auc_score(masks.numpy().ravel(), maps.numpy().ravel())
    ref_ap = aupro(maps, masks, chunk_pixels=chunk)
    gm, gg = maps.cuda(), masks.cuda()
    assert pixel_auroc(gm, gg, chunk) == pytest.approx(ref_pa, abs=1e-9)
    assert pixel_auroc(gm, ~gg, chunk) == pytest.approx(1 - ref_pa, abs=1e-9)  # majority pos
    assert pixel_auroc(maps, masks, chunk, device="cuda") == pytest.approx(ref_pa, abs=1e-9)
    assert aupro(gm, gg, chunk_pixels=chunk) == pytest.approx(ref_ap, abs=1e-9)
    assert aupro(gm.half(), gg.float(), 1.0, chunk) == pytest.approx(
        aupro(maps.half().numpy(), masks.numpy(), 1.0), abs=1e-9)
    s = gm.flatten(1).amax(1)
    y = gg.flatten(1).any(1)
    assert auroc(s, y) == pytest.approx(roc_auc_score(y.cpu(), s.cpu()), abs=1e-9)


def test_cuda_report_matches_cpu() -> None:
    maps, masks = synthetic_maps(30, 32, seed=6)
    labels = masks.flatten(1).any(1).long()
    scores = maps.flatten(1).amax(1)
    defects = ["good" if v == 0 else ("a" if i % 2 else "b") for i, v in enumerate(labels)]
    cpu = evaluate_test_set(scores, labels, maps, masks, defects)
    gpu = evaluate_test_set(scores.cuda(), labels.cuda(), maps.cuda(), masks.cuda(), defects)
    for block_cpu, block_gpu in [(cpu, gpu)] + [
            (cpu["per_defect"][d], gpu["per_defect"][d]) for d in cpu["per_defect"]]:
        for k, v in block_cpu.items():
            if isinstance(v, float):
                assert block_gpu[k] == pytest.approx(v, abs=1e-9), k
            elif k != "per_defect":
                assert block_gpu[k] == v, k
    assert np.isfinite(gpu["aupro"])
