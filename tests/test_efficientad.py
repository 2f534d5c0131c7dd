"""EfficientAD (Batzner et al., WACV 2024): its networks' shapes, its losses, its
augmentation, its maps, and a run that resumes to the same weights and predicts."""

from __future__ import annotations

import math

import pytest
import torch

from multiad.methods.efficientad.anomaly_map import normalise, pixel_map
from multiad.methods.efficientad.augment import colour_jitter
from multiad.methods.efficientad.autoencoder import Autoencoder, decoder_sizes, output_side
from multiad.methods.efficientad.loss import hard_feature_loss, penalty_loss
from multiad.methods.efficientad.pdn import pdn_medium, pdn_small

TINY = ("efficientad.width=0.125", "efficientad.out_channels=16",
        "efficientad.distill_steps=3", "efficientad.distill_batch_size=2",
        "efficientad.distill_norm_images=2")


@pytest.mark.parametrize("build", [pdn_small, pdn_medium])
def test_the_pdns_give_the_papers_grids(build):
    """Unpadded (the paper's): 256 → 56×56, every output seeing a 33×33 patch; padded (the
    distillation's, MHKD's): 64×64, a quarter of the input."""
    x = torch.zeros(1, 3, 256, 256)
    with torch.no_grad():
        assert build(16, 0.125, padding=False)(x).shape == (1, 16, 56, 56)
        assert build(16, 0.125, padding=True)(x).shape == (1, 16, 64, 64)
    assert output_side(build(16, 0.125, padding=False), 256) == 56
    # receptive field: one input pixel changes a 33-wide patch of outputs' inputs only
    net = build(4, 0.125, padding=False).double()
    x = torch.zeros(1, 3, 96, 96, dtype=torch.float64, requires_grad=True)
    net(x)[0, :, 10, 10].sum().backward()
    rows = x.grad.abs().sum(dim=(0, 1, 3)).nonzero().flatten()
    assert int(rows.max() - rows.min()) + 1 == 33


@pytest.mark.parametrize("size", [64, 128, 256])
def test_the_autoencoder_restores_the_students_grid_through_a_1x1_bottleneck(size):
    grid = output_side(pdn_small(8, 0.125), size)
    ae = Autoencoder(16, size, (grid, grid)).eval()
    with torch.no_grad():
        z = ae.encoder(torch.zeros(2, 3, size, size))
        out = ae(torch.zeros(2, 3, size, size))
    assert z.shape == (2, 64, 1, 1)
    assert out.shape == (2, 16, grid, grid)
    assert decoder_sizes(256) == [3, 8, 15, 32, 63, 127]


def test_the_hard_feature_loss_averages_the_worst_differences():
    g = torch.Generator().manual_seed(0)
    t, s = torch.randn(2, 8, 10, 10, generator=g), torch.randn(2, 8, 10, 10, generator=g)
    d = ((t - s) ** 2).flatten().sort().values
    k = int(0.99 * (d.numel() - 1))  # the order statistic taken as the threshold
    want = d[k:].mean()
    torch.testing.assert_close(hard_feature_loss(t, s, 0.99), want)
    # p_hard → 0 is the plain mean squared error
    torch.testing.assert_close(hard_feature_loss(t, s, 0.0), ((t - s) ** 2).mean())
    assert math.isclose(float(penalty_loss(torch.full((1, 4, 2, 2), 3.0))), 9.0)


def test_colour_jitter_changes_each_image_by_one_bounded_adjustment():
    x = torch.rand(16, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 0.5 + 0.25
    torch.manual_seed(1)
    y = colour_jitter(x)
    assert y.shape == x.shape and float(y.min()) >= 0 and float(y.max()) <= 1
    assert not torch.equal(x, y)
    # brightness alone scales by its factor ∈ [0.8, 1.2]: every ratio lies there
    ratio = (y / x).flatten(1)
    spread = ratio.amax(1) - ratio.amin(1)
    brightness = spread < 1e-5
    assert brightness.any()
    assert ((ratio[brightness] >= 0.8 - 1e-6) & (ratio[brightness] <= 1.2 + 1e-6)).all()
    torch.manual_seed(1)
    assert torch.equal(colour_jitter(x), y)  # seeded: a resumed run draws the same


def test_the_penalty_draws_the_distillations_photographs_without_their_source_size():
    from multiad.methods.efficientad.distill_data import PairBatches, image_files

    files = image_files(None)
    pair = PairBatches(files, 32, seed=1, batch_size=2)[5]
    small, source = PairBatches(files, 32, seed=1, batch_size=2, with_source=False)[5]
    assert torch.equal(small, pair[0]) and source.numel() == 0 and pair[1].shape[-1] == 64


def test_the_map_is_padded_to_a_quarter_of_the_input_before_upsampling():
    a = torch.zeros(1, 1, 56, 56)
    a[..., 0, 0] = 1.0
    m = pixel_map([a, a], (256, 256))
    assert m.shape == (1, 256, 256)
    # the grid's first cell sits 4 cells in: the top-left 16 input pixels are padding
    assert float(m[0, :14, :14].max()) < float(m[0, 16:20, 16:20].max())
    torch.testing.assert_close(normalise(torch.tensor([1.0, 3.0]), (1.0, 3.0)),
                               torch.tensor([0.0, 0.1]))


def test_efficientad_resume_equals_an_uninterrupted_run_and_predicts(
        offline_config, resumed_equals_uninterrupted):
    cfg = offline_config("efficientad", *TINY, "train.batch_size=4", "train.epochs=2")
    model, back, meta = resumed_equals_uninterrupted(cfg, interrupted=True, rtol=1e-4,
                                                     atol=1e-6)
    assert back.method == "efficientad" and len(meta["losses"]) == 2
    assert set(meta["losses"][0]) >= {"loss", "L_hard", "L_penalty", "L_AE", "L_STAE"}
    assert meta["losses"][0]["L_penalty"] > 0  # the photographs were drawn
    q = meta["quantiles"]
    assert q["student_teacher"][0] < q["student_teacher"][1] and "held out" in q["validation"]
    assert meta["efficientad_teacher"]["distilled_on"].startswith("the 16 photographs")
    assert meta["efficientad_teacher"]["pdn"] == "small"
    x = torch.randn(2, 3, 64, 64)
    out = model.predict(x)
    side = output_side(model.student, 64)
    assert [m.shape for m in out.layer_maps] == [(2, 1, side, side)] * 2
    a, b = model.raw_maps(x)
    want = pixel_map([normalise(a, q["student_teacher"]), normalise(b, q["autoencoder"])],
                     (64, 64))
    torch.testing.assert_close(out.smoothed, want, rtol=1e-5, atol=1e-6)  # σ = 0: no blur
    torch.testing.assert_close(out.score, want.flatten(1).amax(1), rtol=1e-5, atol=1e-6)


def test_efficientad_m_shares_mhkds_distilled_teacher(offline_config):
    """The same source, size and distillation settings: one cached PDN for both."""
    from multiad.methods.efficientad.distill import distil

    mhkd = offline_config("mhkd", *(k.replace("efficientad.", "mhkd.") for k in TINY)
                          ).validate()
    eff = offline_config("efficientad", *TINY, "efficientad.pdn=medium").validate()
    first = distil(mhkd, torch.device("cpu"), progress=False)[1]
    again = distil(eff, torch.device("cpu"), progress=False)[1]
    assert again["reused"] and again["cache_file"] == first["cache_file"]
    small = distil(offline_config("efficientad", *TINY).validate(), torch.device("cpu"),
                   progress=False)[1]
    assert small["cache_file"] != first["cache_file"]
