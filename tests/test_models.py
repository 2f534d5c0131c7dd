"""Teacher, student (SE, dilation, Eq. 5 fusion) and discriminator."""

import pytest
import torch
from torch import nn

from multiad.backbones import FrozenBackbone, build_backbone
from multiad.methods.multiad import FeatureDiscriminator, SEDilatedWideResNet
from multiad.methods.multiad.fusion import StageFusion
from multiad.methods.multiad.se import SqueezeExcitation
from multiad.methods.multiad.student import SEBottleneck

SHAPES_256 = [(256, 64, 64), (512, 32, 32), (1024, 16, 16), (2048, 8, 8)]


@pytest.fixture(scope="module")
def teacher() -> FrozenBackbone:
    return build_backbone("wide_resnet50_2", "random")


def test_shapes_at_256_match_teacher(teacher):
    x = torch.randn(1, 3, 256, 256)
    s = SEDilatedWideResNet().eval()
    with torch.no_grad():
        fs, ft = s(x), teacher(x)
    assert [tuple(f.shape[1:]) for f in ft] == SHAPES_256
    assert [tuple(f.shape[1:]) for f in fs] == SHAPES_256


@pytest.mark.parametrize("se,fusion,rates",
                         [(False, False, (1, 1, 1, 1)), (True, True, (1, 2, 4, 8))])
def test_shapes_at_small_size(se, fusion, rates, teacher):
    x = torch.randn(2, 3, 64, 64)
    s = SEDilatedWideResNet(se=se, fusion=fusion, dilation_rates=rates)
    fs, ft = s(x), teacher(x)
    assert [f.shape for f in fs] == [f.shape for f in ft]


def test_se_recalibration_matches_hand_computation():
    torch.manual_seed(0)
    se = SqueezeExcitation(32, reduction=4)
    x = torch.randn(3, 32, 5, 7)
    z = x.sum(dim=(2, 3)) / (5 * 7)  # Eq. 2
    s = 1 / (1 + torch.exp(-(torch.clamp(z @ se.tau1.weight.T + se.tau1.bias, min=0)
                             @ se.tau2.weight.T + se.tau2.bias)))  # Eq. 3
    expected = x * s[:, :, None, None]  # Eq. 4
    torch.testing.assert_close(se(x), expected)
    assert se.tau1.out_features == 8


def test_se_sits_before_residual_add_and_switches_off():
    block = SEBottleneck(64, 16, stride=1, dilation=1, se_reduction=16)
    assert isinstance(block.se, SqueezeExcitation)
    plain = SEBottleneck(64, 16, stride=1, dilation=1, se_reduction=None)
    assert isinstance(plain.se, nn.Identity)
    n_se = sum(isinstance(m, SqueezeExcitation) for m in SEDilatedWideResNet().modules())
    assert n_se == 3 + 4 + 6 + 3
    assert not any(isinstance(m, SqueezeExcitation)
                   for m in SEDilatedWideResNet(se=False).modules())


def test_dilation_rates_per_stage():
    s = SEDilatedWideResNet(dilation_rates=(1, 2, 4, 8))
    for stage, r in zip(s.stages, (1, 2, 4, 8), strict=True):
        for block in stage:
            assert block.conv2.dilation == (r, r) and block.conv2.padding == (r, r)
    with pytest.raises(ValueError):
        SEDilatedWideResNet(dilation_rates=(1, 2))


def test_fusion_eq5_against_explicit_computation():
    torch.manual_seed(0)
    f = StageFusion(4, 6).eval()
    low, up = torch.randn(2, 4, 8, 8), torch.randn(2, 6, 4, 4)
    pooled = low.reshape(2, 4, 4, 2, 4, 2).mean(dim=(3, 5))
    cat = torch.cat([pooled, up], 1)
    conv = torch.einsum("oc,nchw->nohw", f.conv.weight[:, :, 0, 0], cat)
    bn = (conv - f.bn.running_mean[None, :, None, None]) / torch.sqrt(
        f.bn.running_var[None, :, None, None] + f.bn.eps)
    bn = bn * f.bn.weight[None, :, None, None] + f.bn.bias[None, :, None, None]
    torch.testing.assert_close(f(low, up), torch.relu(bn))


def test_fusion_off_is_the_trunk_itself():
    torch.manual_seed(0)
    s = SEDilatedWideResNet(fusion=False).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(s(x), s.trunk(x), strict=True):
            assert torch.equal(a, b)
    sf = SEDilatedWideResNet(fusion=True).eval()
    with torch.no_grad():
        out, trunk = sf(x), sf.trunk(x)
    assert torch.equal(out[0], trunk[0]) and not torch.equal(out[1], trunk[1])


def test_discriminator_output_and_probability_range():
    torch.manual_seed(0)
    d = FeatureDiscriminator(16, (4, 4), dropout=0.3)
    assert [m.out_channels for m in d.modules() if isinstance(m, nn.Conv2d)] == [128, 256, 512,
                                                                                1024]
    x = torch.randn(5, 16, 4, 4) * 100
    logits = d(x)
    assert logits.shape == (5,)
    p = d.probability(x)
    assert torch.all((p >= 0) & (p <= 1))
    d.eval()
    torch.testing.assert_close(d(x), d(x))  # dropout only in training
