"""Frozen ImageNet WideResNet-50-2 teacher T (METHOD_SPEC §2)."""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models import wide_resnet50_2

from multiad.weights import TeacherWeights, resolve_teacher_weights


class FrozenTeacher(nn.Module):
    """WRN-50-2 trunk returning the outputs of ``layer1..layer4`` (maps for M1..M4).

    The teacher is never trained: its parameters do not require gradients and it stays in
    eval mode (BatchNorm uses the ImageNet running statistics) whatever ``train()`` says.
    """

    def __init__(self, weights: str | None = "imagenet") -> None:
        super().__init__()
        self.source: TeacherWeights = resolve_teacher_weights(weights)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.source.random_seed)  # the random teacher is reproducible
            net = wide_resnet50_2(weights=None)
        if self.source.path is not None:
            state = torch.load(self.source.path, map_location="cpu", weights_only=True)
            net.load_state_dict(state)
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.layers = nn.ModuleList([net.layer1, net.layer2, net.layer3, net.layer4])
        for p in self.parameters():
            p.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> FrozenTeacher:  # noqa: ARG002 - always eval
        return super().train(False)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x)
            feats.append(x)
        return feats
