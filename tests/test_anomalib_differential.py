"""Differential checks against anomalib's torch models on identical features (optional:
``make check-anomalib`` installs the ``anomalib`` extra; without it these tests skip).

What each comparison shows (the baselines page lists the differences):
- PaDiM: the same Mahalanobis distances, except that anomalib adds a second 1e-5·I to
  every covariance before inverting it (a "stabilisation" the reference does not have);
- PatchCore: anomalib's nearest-neighbour distances are Euclidean, the reference's (faiss)
  and ours squared; anomalib's image score re-weights the maximum (k = 9), the
  reference's does not;
- STFPM: anomalib's loss is ours times ½·batch size (it sums over the batch and halves);
- RD4AD: the same loss.
"""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.anomalib
pytest.importorskip("anomalib.models.image.padim.torch_model",
                    reason="anomalib is not installed (make check-anomalib)")


def _features(seed: int = 0) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    shapes = [(4, 6, 8, 8), (4, 10, 4, 4)]
    return ([torch.randn(s, generator=g) for s in shapes],
            [torch.randn(s, generator=g) for s in shapes])


def test_padim_mahalanobis_matches_anomalib_but_for_its_extra_regularisation():
    from anomalib.models.components.stats import MultiVariateGaussian
    from anomalib.models.image.padim.anomaly_map import AnomalyMapGenerator

    from multiad.methods.padim.torch_model import GaussianStats

    torch.manual_seed(0)
    train = torch.randn(30, 5, 3, 3) * 2 + 1
    test = torch.randn(4, 5, 3, 3) * 2 + 1
    ours = GaussianStats(5, 9, eps=0.01)
    ours.update(train)
    ours.finalise()
    mean, inv = MultiVariateGaussian().fit(train)
    theirs = AnomalyMapGenerator.compute_distance(test, [mean, inv])
    mine = ours.mahalanobis(test)
    torch.testing.assert_close(mine, theirs, rtol=1e-3, atol=1e-4)  # same up to 1e-5·I
    assert not torch.allclose(mine, theirs, rtol=1e-7, atol=0)  # … which is there


def test_patchcore_distances_are_the_square_of_anomalibs():
    from anomalib.models.image.patchcore.torch_model import PatchcoreModel

    from multiad.methods.patchcore.nn_search import nearest_distances

    torch.manual_seed(0)
    q, bank = torch.randn(40, 16), torch.randn(25, 16)
    theirs = PatchcoreModel.euclidean_dist(q, bank).min(dim=1).values
    torch.testing.assert_close(nearest_distances(q, bank), theirs ** 2, rtol=1e-4, atol=1e-5)


def test_stfpm_loss_is_anomalibs_divided_by_half_the_batch():
    from anomalib.models.image.stfpm.loss import STFPMLoss

    from multiad.methods.stfpm.loss import stfpm_loss

    t, s = _features()
    names = [f"layer{i}" for i in range(len(t))]
    theirs = STFPMLoss()(dict(zip(names, t, strict=True)), dict(zip(names, s, strict=True)))
    batch = t[0].shape[0]
    torch.testing.assert_close(theirs, 0.5 * batch * stfpm_loss(t, s), rtol=1e-5, atol=1e-6)


def test_rd4ad_loss_equals_anomalibs():
    from anomalib.models.image.reverse_distillation.loss import ReverseDistillationLoss

    from multiad.methods.rd4ad.loss import rd4ad_loss

    e, d = _features(1)
    torch.testing.assert_close(ReverseDistillationLoss()(e, d), rd4ad_loss(e, d))


def test_aupimo_equals_anomalibs_over_the_range_it_integrates():
    """anomalib integrates between its grid thresholds nearest the FPR bounds but divides by
    the full range's length: ours over that achieved range, scaled the same way, agrees
    (to its threshold grid); over the exact bounds ours is ~1.5 % higher on these maps."""
    import math

    import numpy as np
    from anomalib.metrics.pimo.functional import aupimo_scores, thresh_at_shared_fpr_level

    from multiad.metrics.aupimo import aupimo

    rng = np.random.default_rng(0)
    maps = rng.normal(size=(24, 128, 128)).astype(np.float32)
    masks = np.zeros(maps.shape, bool)
    for i in range(6):
        y, x = rng.integers(0, 100, 2)
        masks[i, y:y + 20, x:x + int(rng.integers(3, 25))] = True
        maps[i][masks[i]] += rng.uniform(2.5, 4.5)
    th, fpr, _, _, theirs, _ = aupimo_scores(torch.from_numpy(maps),
                                             torch.from_numpy(masks).int())
    lo = float(thresh_at_shared_fpr_level(th, fpr, 1e-5)[2])
    hi = float(thresh_at_shared_fpr_level(th, fpr, 1e-4)[2])
    ours = aupimo(maps, masks, fpr_bounds=(lo, hi)).per_image[:6]
    scaled = ours * math.log(hi / lo) / math.log(1e-4 / 1e-5)
    np.testing.assert_allclose(scaled, theirs[:6].numpy(), atol=2e-4)
