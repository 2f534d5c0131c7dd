"""The PDN teacher of EfficientAD (paper §3.1, its pretraining) and of MHKD (paper §III-A;
reference ``pretraining.py``), distilled once per source network and settings, and cached.

The target of an image is the source network's (``teacher.backbone``: WRN-101-2 in the
paper, ResNeXt-101 in the code) PatchCore-style patch features of stages 2 and 3 at twice
the input size — 3×3 neighbourhoods, stage 3 upsampled to stage 2's grid, each pooled to
1024 values and both together to ``out_channels`` (PatchCore's ``patch_features``) —
normalised per channel by their mean and standard deviation over ``distill_norm_images``
draws. The PDN (``build_pdn``, padded so that its grid is the target's; a run may use it
unpadded, the same weights) sees the image at the input size and learns the target by
MSE: Adam (lr 1e-4, weight decay 1e-5), ``distill_steps`` steps of ``distill_batch_size``
draws (the reference: 60,000 of 32 ImageNet images). The result is a file in the cache
(``<cache>/pdn_teachers/``) named by a digest of everything it depends on, with what it
was distilled on, its losses, its wall time and peak memory; a run reuses it.
"""

from __future__ import annotations

import hashlib
import json
import resource
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from tqdm.auto import tqdm

from multiad.backbones import FeatureInfo, FrozenBackbone, WeightsSource, build_backbone
from multiad.backbones.resnet import IMAGENET_MEAN, IMAGENET_STD
from multiad.data import normalize
from multiad.methods.efficientad.distill_data import (
    PairBatches,
    batches,
    default_workers,
    describe,
    image_files,
)
from multiad.methods.efficientad.pdn import build_pdn
from multiad.methods.patchcore.torch_model import patch_features
from multiad.torch_files import load_torch, save_torch

if TYPE_CHECKING:
    from multiad.config import RunConfig
    from multiad.methods.efficientad.config import PDNTeacherConfig

CACHE_VERSION = 3  # 2: each batch seeded by its index; 3: the PDN's size


def teacher_settings(cfg: RunConfig) -> PDNTeacherConfig:
    """The run's method section, which says how its PDN teacher is distilled."""
    return cfg.sections[cfg.method]


def target_features(source: FrozenBackbone, x_large: torch.Tensor, layers: tuple[int, ...],
                    out_channels: int) -> torch.Tensor:
    """The unnormalised target of images at twice the PDN's input: N×out×h×w."""
    feats = source(normalize(x_large, source.mean, source.std))
    flat, (h, w) = patch_features(feats, layers, 3, 1024, out_channels)
    return flat.reshape(len(x_large), h, w, out_channels).permute(0, 3, 1, 2).contiguous()


def _settings(cfg: RunConfig, source: FrozenBackbone, data: dict[str, Any]) -> dict[str, Any]:
    p = teacher_settings(cfg)
    src = source.source  # what the weights are, not where they lie
    return {"version": CACHE_VERSION, "torch": torch.__version__,
            "source": {"backbone": src.backbone, "kind": src.kind, "sha256": src.sha256,
                       "random_seed": src.random_seed},
            "data": data, "image_size": cfg.data.image_size, "out_channels": p.out_channels,
            "pdn": p.pdn,
            "width": p.width, "layers": list(p.distill_layers), "steps": p.distill_steps,
            "batch_size": p.distill_batch_size, "lr": p.distill_lr,
            "norm_images": p.distill_norm_images, "seed": cfg.train.seed}


def distillation_key(cfg: RunConfig) -> str:
    """What a distilled teacher depends on, read from the configuration alone (no weights
    hashed, no images listed): runs with equal keys use one cached PDN (EfficientAD-M and
    MHKD with the same settings)."""
    p = teacher_settings(cfg)
    what = {"pdn": p.pdn, "backbone": cfg.teacher.backbone, "weights": cfg.teacher.weights,
            "root": p.distill_root, "image_size": cfg.data.image_size,
            "out_channels": p.out_channels, "width": p.width, "layers": list(p.distill_layers),
            "steps": p.distill_steps, "batch_size": p.distill_batch_size, "lr": p.distill_lr,
            "norm_images": p.distill_norm_images, "seed": cfg.train.seed,
            "version": CACHE_VERSION}
    digest = hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode())
    return f"pdn-{p.pdn}-{cfg.teacher.backbone}-{digest.hexdigest()[:12]}"


def cache_path(cfg: RunConfig, settings: dict[str, Any]) -> Path:
    from multiad.data import default_cache_dir

    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    base = Path(cfg.data.cache_dir).expanduser() if cfg.data.cache_dir else default_cache_dir()
    name = f"pdn-{settings['pdn']}-{cfg.teacher.backbone}-{digest.hexdigest()[:16]}.pt"
    return base / "pdn_teachers" / name


@torch.no_grad()
def _channel_stats(source: FrozenBackbone, draws: Any, steps: int, cfg: RunConfig,
                   device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference's ``feature_normalization``: the mean of per-batch channel means, then
    the mean of per-batch mean squared deviations, over ``steps`` batches each (the next
    ``2·steps`` batches of ``draws``)."""
    p = teacher_settings(cfg)

    def target(large: torch.Tensor) -> torch.Tensor:
        return target_features(source, large.to(device, non_blocking=True), p.distill_layers,
                               p.out_channels)

    means = [target(next(draws)[1]).mean(dim=(0, 2, 3)) for _ in range(steps)]
    mean = torch.stack(means).mean(0)[None, :, None, None]
    var = [((target(next(draws)[1]) - mean) ** 2).mean(dim=(0, 2, 3)) for _ in range(steps)]
    return mean, torch.stack(var).mean(0).sqrt()[None, :, None, None]


def _peak_memory_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _distil_steps(source: FrozenBackbone, draws: Any, norm_steps: int, cfg: RunConfig,
                  device: torch.device, progress: bool | None
                  ) -> tuple[nn.Module, list[dict[str, float]]]:
    """Normalise the target on the first batches, then train the PDN on the next ones."""
    p = teacher_settings(cfg)
    mean, std = _channel_stats(source, draws, norm_steps, cfg, device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.train.seed)
        # padded while distilled (its grid is the target's); the weights are the same for
        # the unpadded network a run may use
        pdn: nn.Module = build_pdn(p.pdn, p.out_channels, p.width, True).to(device)
    opt = torch.optim.Adam(pdn.parameters(), lr=p.distill_lr, weight_decay=1e-5)
    curve: list[dict[str, float]] = []
    bar = tqdm(range(p.distill_steps), desc=f"PDN teacher from {cfg.teacher.backbone}",
               disable=progress is False if progress is not None else None, leave=False)
    every = max(1, p.distill_steps // 20)
    for step in bar:
        small, large = next(draws)
        with torch.no_grad():
            target = (target_features(source, large.to(device, non_blocking=True),
                                      p.distill_layers, p.out_channels) - mean) / std
        pred = pdn(normalize(small.to(device, non_blocking=True), IMAGENET_MEAN,
                             IMAGENET_STD))
        loss = ((target - pred) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % every == 0 or step + 1 == p.distill_steps:
            curve.append({"step": step + 1, "loss": float(loss.detach())})
            bar.set_postfix(loss=f"{curve[-1]['loss']:.4f}")
    return pdn, curve


def distil(cfg: RunConfig, device: torch.device, progress: bool | None = None
           ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The distilled PDN's state dict and its record, from the cache or made now."""
    p = teacher_settings(cfg)
    source = build_backbone(cfg.teacher.backbone, cfg.teacher.weights)
    files = image_files(p.distill_root)
    data = describe(p.distill_root, files)
    settings = _settings(cfg, source, data)
    path = cache_path(cfg, settings)
    if path.exists():
        try:
            blob = load_torch(path)
        except Exception as exc:  # a damaged file is a miss: distilled again, replaced
            warnings.warn(f"{path}: unreadable ({exc}); distilling the PDN teacher again",
                          stacklevel=2)
            blob = {}
        if blob.get("settings") == json.loads(json.dumps(settings, default=str)):
            return blob["state"], {**blob["meta"], "cache_file": str(path), "reused": True}

    source = source.to(device)
    pairs = PairBatches(files, cfg.data.image_size, cfg.train.seed, p.distill_batch_size)
    workers = default_workers(len(files)) if p.distill_workers is None else p.distill_workers
    norm_steps = max(1, -(-p.distill_norm_images // p.distill_batch_size))
    # batches 0 … 2·norm_steps − 1 normalise the target, the next distill_steps train
    draws = batches(pairs, 0, 2 * norm_steps + p.distill_steps, workers,
                    pin=device.type == "cuda")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    try:
        pdn, curve = _distil_steps(source, draws, norm_steps, cfg, device, progress)
    finally:
        draws.close()  # stops the decoding workers, also on an error or an interrupt
    meta = {**data, "source": source.source.describe(), "steps": p.distill_steps,
            "pdn": p.pdn,
            "decoding_workers": workers,
            "batch_size": p.distill_batch_size, "image_size": cfg.data.image_size,
            "width": p.width, "losses": curve, "wall_s": round(time.perf_counter() - t0, 1),
            "peak_memory_mib": round(_peak_memory_mib(device), 1),
            "peak_memory_kind": "CUDA allocated" if device.type == "cuda"
            else "process max RSS", "device": str(device)}
    if workers:  # the largest decoding worker, apart from the process's own peak
        meta["peak_worker_rss_mib"] = round(
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)
    state = {k: v.detach().cpu() for k, v in pdn.state_dict().items()}
    save_torch(path, {"settings": json.loads(json.dumps(settings, default=str)),
                      "state": state, "meta": meta})
    return state, {**meta, "cache_file": str(path), "reused": False}


class PDNStages(nn.Module):
    """The PDN as a backbone body: one output, the list a ``FrozenBackbone`` returns."""

    def __init__(self, size: str, out_channels: int, width: float, padding: bool) -> None:
        super().__init__()
        self.pdn = build_pdn(size, out_channels, width, padding)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.pdn(x)]


def pdn_teacher(cfg: RunConfig, state: dict[str, torch.Tensor], meta: dict[str, Any]
                ) -> FrozenBackbone:
    """The distilled PDN as the run's frozen teacher (ImageNet input normalisation, one
    output at stride 4); its source records the network it was distilled from."""

    p = teacher_settings(cfg)
    body = PDNStages(p.pdn, p.out_channels, p.width, p.padding)
    body.pdn.load_state_dict(state)
    src = meta["source"]
    digest = hashlib.sha256(b"".join(v.numpy().tobytes() for v in state.values()))
    source = WeightsSource(
        backbone=f"pdn_{p.pdn}<-{src['backbone']}", kind=src["kind"],
        path=Path(meta["cache_file"]) if meta.get("cache_file") else None,
        sha256=digest.hexdigest(), origin=f"distilled from {src['backbone']} "
        f"({src.get('sha256') or src['kind']}) on {meta['distilled_on']}, "
        f"{meta['steps']} steps of {meta['batch_size']}", offline=bool(src.get("offline")),
        random_seed=int(src.get("random_seed", 0)))
    return FrozenBackbone(body, FeatureInfo((p.out_channels,), (4,)), source,
                          IMAGENET_MEAN, IMAGENET_STD)

