"""Eqs. 6–12 against direct, loop-based computations."""

import math

import torch

from multiad.methods.multiad.loss import (
    adversarial_loss,
    balanced_lambda,
    discriminator_loss,
    distillation_loss,
    l2_normalize,
    student_loss,
)


def test_l2_normalisation_eq6():
    f = torch.randn(2, 7, 3, 3)
    n = l2_normalize(f)
    torch.testing.assert_close(n.norm(dim=1), torch.ones(2, 3, 3))


def test_distillation_loss_eq8_hand_loop():
    torch.manual_seed(1)
    shapes = [(2, 3, 4, 4), (2, 5, 2, 2), (2, 6, 1, 3)]
    t = [torch.randn(s) for s in shapes]
    s = [torch.randn(sh) for sh in shapes]
    total = 0.0
    for ft, fs in zip(t, s, strict=True):
        n, c, h, w = ft.shape
        acc, q = 0.0, 0
        for b in range(n):
            for i in range(h):
                for j in range(w):
                    a, v = ft[b, :, i, j].double(), fs[b, :, i, j].double()
                    acc += 1 - float(a @ v) / (float(a.norm()) * float(v.norm()))
                    q += 1
        total += acc / q
    expected = total / len(shapes)
    assert math.isclose(float(distillation_loss(t, s)), expected, rel_tol=1e-5)


def test_distillation_loss_zero_for_identical_and_scale_invariant():
    f = [torch.randn(2, 4, 3, 3)]
    assert float(distillation_loss(f, [x * 3.7 for x in f])) < 1e-6


def test_discriminator_and_adversarial_losses_eq10_11():
    real, fake = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([-0.3, 1.2, 0.0])
    sig = torch.sigmoid
    l_d = -(torch.log(sig(real)) + torch.log(1 - sig(fake))).mean()
    l_adv = -torch.log(sig(fake)).mean()
    torch.testing.assert_close(discriminator_loss(real, fake), l_d)
    torch.testing.assert_close(adversarial_loss(fake), l_adv)


def test_student_loss_eq12():
    lg, la = torch.tensor(0.4), torch.tensor(2.0)
    assert float(student_loss(lg, la, 0.1)) == float(lg + 0.1 * la)
    assert float(student_loss(lg, None, 0.1)) == float(lg)


def test_balanced_lambda_scales_the_adversarial_gradient_to_a_share_of_distillations():
    g = [torch.tensor([3.0, 4.0])]  # ‖·‖ = 5
    a = [torch.tensor([0.0, 0.5]), torch.tensor([1.2])]  # ‖·‖ = 1.3
    lam = balanced_lambda(g, a, ratio=0.2)
    torch.testing.assert_close(lam, torch.tensor(0.2 * 5 / 1.3))
    assert not lam.requires_grad
    assert float(balanced_lambda([torch.zeros(2)], a, ratio=0.2)) == 0.0
