"""Where the time of the optimised training step goes, by kind of kernel.

    python benchmarks/profile_step.py [--out DIR] [--no-compile] [--device cuda]

Profiles the paper profile's step (bf16, channels-last, compiled, fused Adam; T's features
given, as with ``train.cache_teacher``) launched eagerly, so that every kernel is seen,
and sums the device time of its kernels by kind: convolution/GEMM, batch norm, compiled
(Triton) fusions, other element-wise, reductions, Adam, copies. Writes
``<device>_<date-time>_profile_step.json``, which the compute page shows (256² runs).
On a CPU it profiles the uncompiled step at a small size (operator CPU time), which
checks the script rather than measuring anything.
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile

from multiad.atomic import write_json
from multiad.config import RunConfig
from multiad.methods.multiad.trainer import MultiADTrainer
from multiad.provenance import provenance, select_device

# first match wins: kernel (or, on a CPU, operator) names by kind
KINDS = (
    # a training step has no other multi-tensor kernels: Adam's update and its step counters
    ("Adam", r"adam|multi_tensor_apply"),
    ("compiled fusions (Triton)", r"^triton|triton_"),  # their names may say "convolution"
    ("batch norm", r"batch_norm|batchnorm|\bbn_"),  # before cuDNN: cudnn::bn_fw_…
    # before cuDNN too: its NCHW↔NHWC layout transforms are copies, not convolutions
    ("copies and casts", r"copy|cast|memcpy|memset|\bto\b|_to_copy|nchwtonhwc|nhwctonchw"),
    ("convolution / GEMM", r"gemm|xmma|conv|cutlass|nvjet|cudnn|implicit|matmul|\bmm\b|addmm"),
    ("reductions", r"reduce|sum|mean|norm"),
    ("other element-wise", r"elementwise|vectorized|unrolled|add|mul|relu|sigmoid|where"),
)


def kind_of(name: str) -> str:
    low = name.lower()
    return next((kind for kind, pattern in KINDS if re.search(pattern, low)), "other")


def self_time_us(event: Any, cuda: bool) -> float:
    """An averaged profiler event's own time on the device (CUDA) or the CPU, in µs."""
    if cuda:
        for attr in ("self_device_time_total", "self_cuda_time_total"):
            if hasattr(event, attr):
                return float(getattr(event, attr))
        return 0.0
    return float(event.self_cpu_time_total)


def by_kind(events: Any, cuda: bool, steps: int) -> dict[str, dict[str, float]]:
    totals: dict[str, float] = {}
    for e in events:
        t = self_time_us(e, cuda)
        if t > 0:
            totals[kind_of(e.key)] = totals.get(kind_of(e.key), 0.0) + t
    all_us = sum(totals.values()) or 1.0
    return {k: {"ms_per_step": round(v / steps / 1e3, 3), "share": round(v / all_us, 3)}
            for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="benchmarks/results")
    p.add_argument("--device", default="auto")
    p.add_argument("--no-compile", action="store_true")
    p.add_argument("--steps", type=int, default=5)
    args = p.parse_args(argv)
    dev = select_device(args.device)
    cuda = dev.type == "cuda"
    size, batch = (256, 16) if cuda else (64, 4)
    compiled = cuda and not args.no_compile
    torch.backends.cudnn.benchmark = True
    cfg = RunConfig().with_overrides([
        "teacher.weights=random", f"data.image_size={size}", f"train.batch_size={batch}",
        f"train.device={dev}", "train.deterministic=false",
        f"train.compile={str(compiled).lower()}"])
    tr = MultiADTrainer(cfg, dev)
    x = tr.prepare(torch.randint(0, 255, (batch, 3, size, size), dtype=torch.uint8))
    with torch.no_grad(), tr.autocast():
        t_feats = tr.model.teacher(x)

    def steps(n: int) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            tr.step(x, t_feats)
        if cuda:
            torch.cuda.synchronize(dev)
        return (time.perf_counter() - t0) / n

    steps(3)  # compilation, cuDNN's choice of kernels, Adam's state
    step_s = steps(args.steps)

    def teacher(n: int) -> float:  # what the step saves with T's features computed once
        t0 = time.perf_counter()
        with torch.no_grad(), tr.autocast():
            for _ in range(n):
                tr.teacher_fn(x)
        if cuda:
            torch.cuda.synchronize(dev)
        return (time.perf_counter() - t0) / n

    teacher(3)
    teacher_s = teacher(args.steps)
    activity = ProfilerActivity.CUDA if cuda else ProfilerActivity.CPU
    with profile(activities=[activity]) as prof:
        steps(args.steps)
    events = prof.key_averages()
    sort = "self_cuda_time_total" if cuda else "self_cpu_time_total"
    try:
        top = events.table(sort_by=sort, row_limit=25)
    except (KeyError, AttributeError, ValueError):
        top = events.table(row_limit=25)
    res = {"what": "optimised training step (T's features given), launched eagerly",
           "compiled": compiled, "image_size": size, "batch": batch,
           "step_ms_eager_launch": round(step_s * 1e3, 2),
           "teacher_forward_ms": round(teacher_s * 1e3, 2),
           "by_kind": by_kind(events, cuda, args.steps), "top_kernels": top, **provenance(dev)}
    name = re.sub(r"[^A-Za-z0-9]+", "-", res["device"]["name"]).strip("-")
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    path = Path(args.out) / f"{name}_{stamp}_profile_step.json"
    write_json(path, res)
    for kind, v in res["by_kind"].items():
        print(f"{kind:28s} {v['ms_per_step']:8.3f} ms/step  {v['share']:6.1%}")
    print(f"step {res['step_ms_eager_launch']} ms (launched eagerly); T's forward, which "
          f"the cache takes out of it, {res['teacher_forward_ms']} ms")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
