"""SimpleNet's settings, the reference code's values (its MVTec AD script) by default. Its
schedule — 40 "meta epochs" of 4 discriminator epochs (160 passes), batch 8, Adam 2e-4 for
the discriminator — is the method's reference schedule in ``multiad.methods``; the
reference's per-meta-epoch test evaluation (and its keeping of the best test epoch) is not
reproduced: the last epoch is the model."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SimpleNetConfig:
    """SimpleNet (Liu et al., 2023; reference DonaldRR/SimpleNet)."""

    layers: tuple[int, ...] = (2, 3)  # backbone stages (reference: layer2, layer3)
    patch_size: int = 3  # neighbourhood aggregated around each position (PatchCore's)
    pretrain_dim: int = 1536  # each layer's patch features average-pooled to this size
    target_dim: int = 1536  # the layers' pooled features together (the adaptor's width)
    adaptor: bool = True  # the feature adaptor (reference script: --pre_proj 1)
    adaptor_lr: float = 1e-4  # AdamW (reference: 0.1 × its base lr 1e-3)
    adaptor_weight_decay: float = 0.01  # AdamW's default, which the reference keeps
    noise_std: float = 0.015  # σ of the Gaussian noise making anomalous features
    hidden: int = 1024  # the discriminator's hidden width (reference: --dsc_hidden 1024)
    margin: float = 0.5  # th of the truncated L1 loss (reference: --dsc_margin 0.5)
    weight_decay: float = 1e-5  # the discriminator's Adam
    sigma: float = 4.0  # Gaussian smoothing of the upsampled patch-score map
