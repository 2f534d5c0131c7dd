"""Timing of the pooled pixel metrics on synthetic data (``python -m multiad.metrics.bench``).

BMAD-Brain scale is ``--n-images 3715 --size 256`` (≈243 M pixels).
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from typing import Any

import torch

from multiad.metrics._inputs import UndefinedMetricError
from multiad.metrics.aupimo import aupimo
from multiad.metrics.aupro import aupro
from multiad.metrics.auroc import pixel_auroc
from multiad.metrics.precision_recall import average_precision, pixel_f1_max_result


def synthetic_maps(n_images: int, size: int, device: str | torch.device = "cpu",
                   seed: int = 0, anomalous_fraction: float = 0.4, shift: float = 0.4
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Float32 maps and bool masks, N×size×size: uniform noise, one disc per anomalous image.

    Normal pixels score in [0, 0.6), anomalous ones in [shift, 0.6 + shift); scores are
    multiples of 2⁻¹⁶, so there are many ties. ``shift=0`` makes both classes overlap fully
    (the slowest case for the CPU path).
    """
    g = torch.Generator().manual_seed(seed)
    maps = torch.rand((n_images, size, size), generator=g).mul_(0.6 * 65536).floor_()
    maps.div_(65536)
    masks = torch.zeros((n_images, size, size), dtype=torch.bool)
    idx = torch.nonzero(torch.rand(n_images, generator=g) < anomalous_fraction).flatten()
    yy = torch.arange(size).view(1, size, 1)
    xx = torch.arange(size).view(1, 1, size)
    for i in range(0, idx.numel(), 256):
        sel = idx[i:i + 256]
        k = sel.numel()
        cy, cx = torch.randint(0, size, (2, k, 1, 1), generator=g)
        r = torch.randint(max(2, size // 25), max(3, size // 4), (k, 1, 1), generator=g)
        masks[sel] = (yy - cy) ** 2 + (xx - cx) ** 2 <= r ** 2
    maps[masks] += shift
    return maps.to(device), masks.to(device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_pixel_metrics(n_images: int = 3715, size: int = 256,
                       device: str | torch.device = "cpu", seed: int = 0,
                       fpr_limit: float = 0.3, shift: float = 0.4) -> dict[str, Any]:
    """Wall-clock seconds of :func:`pixel_auroc`, :func:`aupro`, pixel AP, pixel F1-max and
    AUPIMO on synthetic data (the last three on the host: CUDA maps are copied there)."""
    dev = torch.device(device)
    if dev.type == "cuda":  # warm up kernels and the allocator outside the timing
        m, g = synthetic_maps(4, 32, dev, seed)
        pixel_auroc(m, g)
        aupro(m, g, fpr_limit)
    maps, masks = synthetic_maps(n_images, size, dev, seed, shift=shift)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    _sync(dev)
    t0 = time.perf_counter()
    pa = pixel_auroc(maps, masks)
    _sync(dev)
    t1 = time.perf_counter()
    ap = aupro(maps, masks, fpr_limit)
    _sync(dev)
    t2 = time.perf_counter()
    timed = {}
    for name, fn in (("pixel_ap", lambda: average_precision(maps, masks)),
                     ("pixel_f1_max", lambda: pixel_f1_max_result(maps, masks).f1),
                     ("aupimo", lambda: aupimo(maps, masks).mean)):
        t = time.perf_counter()
        try:
            timed[name] = fn()
        except UndefinedMetricError:  # AUPIMO on fewer than 100,000 normal pixels
            timed[name] = None
        timed[f"{name}_s"] = round(time.perf_counter() - t, 4)
    extra = {}
    if dev.type == "cuda":
        inputs = maps.numel() * maps.element_size() + masks.numel() * masks.element_size()
        extra["gpu_peak_extra_gib"] = round(
            (torch.cuda.max_memory_allocated(dev) - inputs) / 2**30, 3)
    return {"device": str(dev), "n_images": n_images, "size": size,
            "n_pixels": n_images * size * size,
            "anomalous_fraction": float(masks.float().mean()),
            "pixel_auroc": pa, "pixel_auroc_s": round(t1 - t0, 4),
            "aupro": ap, "aupro_s": round(t2 - t1, 4), **timed, "fpr_limit": fpr_limit,
            "shift": shift, **extra}


def main(argv: list[str] | None = None) -> int:
    """Print the timings as JSON."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n-images", type=int, default=3715)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shift", type=float, default=0.4,
                   help="score offset of anomalous pixels (0: classes overlap fully)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads (default: torch's choice, all cores)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    res = time_pixel_metrics(args.n_images, args.size, args.device, args.seed, shift=args.shift)
    # peak resident memory of this whole process: interpreter, torch, inputs and metrics
    res["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)
    res["threads"] = torch.get_num_threads()
    print(json.dumps(res))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
