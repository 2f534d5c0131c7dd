"""Where the student's training time goes: variants timed, and a kernel profile.

    python benchmarks/profile_student.py [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from multiad.atomic import write_json
from multiad.methods.multiad import SEDilatedWideResNet


def fwd_bwd_img_per_s(net: torch.nn.Module, x: torch.Tensor, amp: bool, iters: int = 10
                      ) -> float:
    def step() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            feats = net(x)
        sum(f.float().mean() for f in feats).backward()

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    torch.cuda.synchronize()
    return x.shape[0] * iters / (time.perf_counter() - t0)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--out", default="benchmarks/results")
    p.add_argument("--batch", type=int, default=16)
    args = p.parse_args()
    torch.backends.cudnn.benchmark = True
    dev = torch.device("cuda")
    res: dict = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
                 "batch": args.batch, "variants": {}}
    x0 = torch.randn(args.batch, 3, 256, 256, device=dev)
    variants = {
        "full": {}, "no_se": {"se": False}, "no_fusion": {"fusion": False},
        "no_dilation": {"dilation_rates": (1, 1, 1, 1)},
        "plain_wrn": {"se": False, "fusion": False, "dilation_rates": (1, 1, 1, 1)},
    }
    for name, kw in variants.items():
        for fmt in ("channels_last", "contiguous"):
            for amp in (True, False):
                net = SEDilatedWideResNet(**kw).to(dev).train()
                x = x0
                if fmt == "channels_last":
                    net = net.to(memory_format=torch.channels_last)
                    x = x0.contiguous(memory_format=torch.channels_last)
                key = f"{name}/{fmt}/{'bf16' if amp else 'fp32'}"
                res["variants"][key] = round(fwd_bwd_img_per_s(net, x, amp), 1)
                print(key, res["variants"][key], flush=True)
                del net
    net = SEDilatedWideResNet().to(dev).train().to(memory_format=torch.channels_last)
    x = x0.contiguous(memory_format=torch.channels_last)
    fwd_bwd_img_per_s(net, x, True, 2)
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fwd_bwd_img_per_s(net, x, True, 3)
    table = prof.key_averages().table(sort_by="cuda_time_total", row_limit=25)
    print(table)
    res["top_kernels"] = table
    write_json(Path(args.out) / "profile_student.json", res)
    print(json.dumps(res["variants"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
