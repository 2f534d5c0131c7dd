"""A validation that needs no test labels: held-out normal training images, once as they
are and once with a synthetic anomaly pasted in (:mod:`multiad.data.pasted_anomalies`).

``train.holdout`` sets the share of the normal training images set aside (deterministic
in the seed; they are never trained on). Every trained method is validated the same way
after each ``train.validate_every`` epochs: its image and pixel AUROC on the held-out
pairs go into the epoch's row of ``losses.csv`` (``val_image_auroc``,
``val_pixel_auroc``). It serves to choose settings the paper leaves open and to watch a
student learn to imitate anomalies too (over-generalisation); reported numbers stay those
of the test split after the last epoch.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from multiad.data.pasted_anomalies import paste_anomalies
from multiad.engine.trainer import TrainerBase
from multiad.metrics import auroc, pixel_auroc

VALIDATION_KEYS = ("val_image_auroc", "val_pixel_auroc")


@dataclass
class HeldOut:
    """The validation pairs: ``images`` (uint8 N×3×H×W), ``labels`` (N: 0 normal, 1
    pasted) and ``masks`` (bool N×H×W, the pasted regions)."""

    images: torch.Tensor
    labels: torch.Tensor
    masks: torch.Tensor


def holdout_count(n: int, share: float) -> int:
    """How many of ``n`` training images a share holds out: at least one (when the share
    is positive), never all of them."""
    if share <= 0:
        return 0
    k = max(1, round(n * share))
    if k >= n:
        raise ValueError(f"train.holdout={share} would hold out {k} of the {n} training "
                         "images and leave none to train on; use a smaller share")
    return k


def hold_out(images_u8: torch.Tensor, share: float, seed: int
             ) -> tuple[torch.Tensor, HeldOut | None]:
    """(the images to train on, the validation pairs) — the held-out images chosen by
    ``seed`` alone, their anomalies pasted deterministically."""
    k = holdout_count(len(images_u8), share)
    if k == 0:
        return images_u8, None
    g = torch.Generator().manual_seed(seed * 7_919 + 17)
    order = torch.randperm(len(images_u8), generator=g).to(images_u8.device)
    keep, held = order[k:].sort().values, order[:k].sort().values
    normal = images_u8[held].cpu()
    pasted, masks = paste_anomalies(normal, seed=seed)
    return images_u8[keep], HeldOut(
        images=torch.cat([normal, pasted]),
        labels=torch.cat([torch.zeros(k, dtype=torch.long), torch.ones(k, dtype=torch.long)]),
        masks=torch.cat([torch.zeros((k, *masks.shape[1:]), dtype=torch.bool), masks.bool()]))


@contextmanager
def evaluating(modules: list[nn.Module]) -> Iterator[None]:
    """Every module in eval mode, and each submodule's own mode restored afterwards."""
    modes = [(m, m.training) for top in modules for m in top.modules()]
    for top in modules:
        top.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for m, was in modes:
            m.training = was


def validate(trainer: TrainerBase, held: HeldOut, train_images: torch.Tensor
             ) -> dict[str, float]:
    """Image and pixel AUROC of ``trainer``'s inference model on the held-out pairs, now."""
    tops = [m for m in (trainer.model, *trainer.modules().values()) if isinstance(m, nn.Module)]
    scores, maps = [], []
    bs = trainer.cfg.train.eval_batch_size
    with evaluating(tops):
        model = trainer.validation_model(train_images)
        for i in range(0, len(held.images), bs):
            with trainer.autocast():
                out = model.predict(trainer.prepare(held.images[i:i + bs]))
            scores.append(out.score.float().cpu())
            maps.append(out.smoothed.float().cpu())
    return {"val_image_auroc": auroc(torch.cat(scores), held.labels),
            "val_pixel_auroc": pixel_auroc(torch.cat(maps), held.masks)}
