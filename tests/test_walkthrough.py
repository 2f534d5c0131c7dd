"""The teaching page's measurements (multiad.pipeline.walkthrough) on a tiny Multi-AD: shapes from
the modules, the receptive field, SE factors, feature pictures and a short trace."""

from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture()
def trainer(tiny_config):
    from multiad.methods.multiad.trainer import MultiADTrainer

    cfg = tiny_config.with_overrides(["data.image_size=64", "train.batch_size=4"]).validate()
    return MultiADTrainer(cfg, torch.device("cpu"))


def test_stage_shapes_and_the_architecture_figure(trainer):
    import matplotlib

    matplotlib.use("Agg")
    from multiad.pipeline.walkthrough import architecture_figure, stage_shapes

    x = torch.zeros(1, 3, 64, 64)
    shapes = stage_shapes(trainer.model, x, trainer.cfg.multiad)
    info = trainer.teacher.feature_info
    assert [s[0] for s in shapes.teacher] == list(info.channels)
    assert [s[1] for s in shapes.teacher] == info.spatial(64)
    assert shapes.distilled == shapes.teacher  # S offers T's shapes for distillation
    fig = architecture_figure(shapes, 64, (4,), "wide_resnet50_2")
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    assert "D on stage 4" in texts and "×".join(map(str, shapes.teacher[3])) in texts


def test_dilation_widens_the_receptive_field_of_a_stage(trainer):
    import dataclasses

    from multiad.methods.multiad.students import build_student
    from multiad.pipeline.walkthrough import effective_receptive_field

    def field(rates):
        torch.manual_seed(0)
        cfg = dataclasses.replace(trainer.cfg.multiad, dilation_rates=rates)
        return effective_receptive_field(build_student(cfg, trainer.teacher).eval(), 2, 128)

    wide, narrow = field((1, 2, 4, 8)), field((1, 1, 1, 1))
    assert wide.max() == pytest.approx(1.0) and narrow.max() == pytest.approx(1.0)
    assert (wide >= 0.05).sum() > 1.5 * (narrow >= 0.05).sum()


def test_se_weights_are_one_factor_per_channel_per_image_in_0_1(trainer):
    from multiad.methods.multiad.se import SqueezeExcitation
    from multiad.pipeline.walkthrough import se_weights

    x = torch.randn(2, 3, 64, 64)
    w = se_weights(trainer.model.student.eval(), x)
    blocks = [m for m in trainer.model.student.modules() if isinstance(m, SqueezeExcitation)]
    assert len(w) == len(blocks) and all(t.shape == (2, b.tau2.out_features)
                                         for t, b in zip(w, blocks, strict=True))
    assert all(((t > 0) & (t < 1)).all() for t in w)


def test_pca_pictures_share_the_reference_projection():
    from multiad.pipeline.walkthrough import pca_rgb

    g = torch.Generator().manual_seed(0)
    a = torch.randn(16, 8, 8, generator=g)
    pic, proj = pca_rgb(a)
    assert pic.shape == (8, 8, 3) and pic.min() == 0.0 and pic.max() == 1.0
    same, _ = pca_rgb(a, proj)
    np.testing.assert_allclose(same, pic, atol=1e-6)
    shifted, _ = pca_rgb(a + 100 * proj.basis[0][:, None, None], proj)
    assert shifted[..., 0].min() == 1.0  # outside the reference range: clipped, not rescaled


def test_short_training_records_every_step(trainer, tiny_texture_root):
    from multiad.data import load_split
    from multiad.pipeline.walkthrough import short_training

    _, split = load_split(trainer.cfg.data, "train", progress=False)
    trace = short_training(trainer, split.images[:8], split.images[8:], steps=3,
                           batch_size=4, every=2)
    assert {"L_G", "L_adv", "L_D", "L_S", "lambda"} <= set(trace.losses)
    assert all(len(v) == 3 for v in trace.losses.values())
    assert len(trace.d_real) == len(trace.d_fake) == 3
    assert all(0 <= p <= 1 for p in trace.d_real + trace.d_fake)
    assert len(trace.stage_distance) == 2 and len(trace.stage_distance[0]) == 4
