"""Frozen pretrained feature extractors ("teachers") behind one interface.

``build_backbone(name, weights)`` returns a :class:`FrozenBackbone`: four stage outputs at
strides 4/8/16/32, their channel counts (``feature_info``), the input normalisation its
weights expect (``mean``/``std``) and where its weights came from (``source``: origin,
path, SHA-256; stored in every result). ``BACKBONES`` describes each one as data.
"""

from multiad.backbones.base import FeatureInfo, FrozenBackbone, WeightsSource
from multiad.backbones.registry import (
    BACKBONES,
    OFFLINE_BACKBONE,
    PAPER_BACKBONE,
    WEIGHT_REQUESTS,
    BackboneSpec,
    auto_backbone,
    build_backbone,
    get_spec,
    resolve,
    weights_available,
)
from multiad.backbones.weights import WeightsError, sha256_of

__all__ = [
    "BACKBONES",
    "OFFLINE_BACKBONE",
    "auto_backbone",
    "PAPER_BACKBONE",
    "WEIGHT_REQUESTS",
    "BackboneSpec",
    "FeatureInfo",
    "FrozenBackbone",
    "WeightsError",
    "WeightsSource",
    "build_backbone",
    "get_spec",
    "resolve",
    "sha256_of",
    "weights_available",
]
