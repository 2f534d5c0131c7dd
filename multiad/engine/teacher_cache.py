"""The teacher's features of a training set, computed once (``train.cache_teacher``).

T is frozen and in eval mode and training uses no augmentation, so the features a step
would compute for an image are the same in every epoch: 250 epochs cost one pass of T
instead of 250, when the features fit in memory.
"""

from __future__ import annotations

import os

import torch
from tqdm.auto import tqdm

from multiad.engine.trainer import TrainerBase


def _memory_budget(device: torch.device) -> int:
    """Bytes that cached teacher features may take: half the free GPU memory (counting
    what PyTorch holds reserved but unused, e.g. from an earlier group), or a quarter of
    the available RAM (0 where the system does not say)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        free += torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return free // 2
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 4
    except (AttributeError, ValueError, OSError):  # e.g. macOS, Windows
        return 0


@torch.no_grad()
def teacher_features(trainer: TrainerBase, images_u8: torch.Tensor, progress: bool = True,
                     budget: int | None = None) -> list[torch.Tensor] | None:
    """T's features of every training image, computed once, or ``None`` when they would
    take more than ``budget`` bytes (default :func:`_memory_budget`).

    T is frozen and in eval mode and training uses no augmentation, so these are the
    features each step would compute (in the step's precision and layout, at the step's
    batch size; with ``train.compile`` T here runs uncompiled, which differs from the
    compiled T only by rounding): 250 epochs then cost one pass of T instead of 250. At
    256² they take 3.9 MB per image in bf16 (an MVTec category ≈ 1 GB, BMAD Brain 29 GB).
    """
    n, bs = len(images_u8), trainer.cfg.train.batch_size
    budget = _memory_budget(trainer.device) if budget is None else budget
    out: list[torch.Tensor] = []
    for i in tqdm(range(0, n, bs), desc="teacher features", disable=not progress,
                  leave=False):
        feats = trainer.teacher_forward(trainer.prepare(images_u8[i:i + bs]))
        if not out:
            need = n * sum(f[0].numel() * f.element_size() for f in feats)
            if need > budget:
                if progress:
                    print(f"teacher features of {n} images need {need / 2**30:.1f} GiB, more "
                          f"than the {budget / 2**30:.1f} GiB budget: T runs in every step")
                return None
            out = [torch.empty((n, *f.shape[1:]), dtype=f.dtype, device=f.device,
                               memory_format=trainer.memory_format()) for f in feats]
        for o, f in zip(out, feats, strict=True):
            o[i:i + len(f)] = f
    return out
