"""MHKD's costs and its numbers on the embedded sets (``make bench``): its teacher's
distillation (wall time, peak memory, loss) and then the student in the quality-floor
setting (``benchmarks/quality_setting.py``), at the demo profile's CPU scale (quarter
widths, 128 channels, the teacher distilled for 40 steps of 4 from the bundled
photographs, student lr 1e-3). The teacher is distilled once and reused for both sets, as
a profile reuses it. Writes ``benchmarks/results/<device>_mhkd_costs_<stamp>.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

DEMO_SCALE = ["mhkd.width=0.25", "mhkd.out_channels=128", "mhkd.lr=0.001",
              "mhkd.distill_steps=40", "mhkd.distill_batch_size=4",
              "mhkd.distill_norm_images=16", "mhkd.distill_lr=0.001"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="benchmarks/results")
    p.add_argument("--epochs", type=int, default=8)
    args = p.parse_args(argv)
    from quality_setting import SETS, SETTING, make_sets, quality_config, run_metrics
    from result_file import write_result

    from multiad.provenance import provenance
    from multiad.train import train

    res: dict[str, Any] = {"kind": "mhkd_costs", **SETTING, "epochs": args.epochs,
                           "overrides": DEMO_SCALE, **provenance(torch.device("cpu")),
                           "runs": []}
    info = res["device"]
    res["device"] = f"{info['name']} ({info['cores']} cores)"
    work = Path(tempfile.mkdtemp(prefix="mhkd-costs-"))
    try:
        make_sets(work)
        for cat in SETS:
            cfg = quality_config("mhkd", cat, work, f"train.epochs={args.epochs}", *DEMO_SCALE)
            run, t0 = work / cat, time.perf_counter()
            train(cfg, run, progress=False)
            wall = time.perf_counter() - t0
            meta = json.loads((run / "train.json").read_text())
            with open(run / "losses.csv", encoding="utf-8") as fh:
                losses = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]
            teacher = meta["mhkd_teacher"]
            if "teacher" not in res:  # distilled by the first run, reused by the next
                res["teacher"] = {k: teacher[k] for k in (
                    "distilled_on", "steps", "batch_size", "image_size", "width", "losses",
                    "wall_s", "peak_memory_mib", "peak_memory_kind", "device")}
            r = {"set": cat, "teacher_reused": teacher["reused"], "run_s": round(wall, 1),
                 "first": losses[0], "last": losses[-1], **run_metrics(run, work / "ev" / cat)}
            res["runs"].append(r)
            print(f"[{wall:6.1f} s] {cat}: L_L {losses[0]['L_L']:.3f}→{losses[-1]['L_L']:.3f}; "
                  f"{r['image_auroc']:.3f} / {r['pixel_auroc']:.3f} / {r['aupro']:.3f}",
                  flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_result(res, args.out, "mhkd_costs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
