"""MHKD's costs and its numbers on the embedded sets (``make bench``): its teacher's
distillation (wall time, peak memory, loss) and then the student in the quality-floor
setting (``benchmarks/quality_setting.py``), at the demo profile's CPU scale (quarter
widths, 128 channels, the teacher distilled for 40 steps of 4 from the bundled
photographs, student lr 1e-3). The teacher is distilled once and reused for both sets, as
a profile reuses it. Writes ``benchmarks/results/<device>_mhkd_costs_<stamp>.json``.
"""

from __future__ import annotations

import argparse
import json
import time

DEMO_SCALE = ["mhkd.width=0.25", "mhkd.out_channels=128", "mhkd.lr=0.001",
              "mhkd.distill_steps=40", "mhkd.distill_batch_size=4",
              "mhkd.distill_norm_images=16", "mhkd.distill_lr=0.001"]
TEACHER_KEYS = ("distilled_on", "steps", "batch_size", "image_size", "width", "losses",
                "wall_s", "peak_memory_mib", "peak_memory_kind", "device")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="benchmarks/results")
    p.add_argument("--epochs", type=int, default=8)
    args = p.parse_args(argv)
    from quality_setting import SETS, quality_config, read_losses, run_metrics, study

    from multiad.train import train

    with study("mhkd_costs", args.out, epochs=args.epochs, overrides=DEMO_SCALE) as (res, work):
        for cat in SETS:
            cfg = quality_config("mhkd", cat, work, f"train.epochs={args.epochs}", *DEMO_SCALE)
            run, t0 = work / cat, time.perf_counter()
            train(cfg, run, progress=False)
            wall = time.perf_counter() - t0
            teacher = json.loads((run / "train.json").read_text())["mhkd_teacher"]
            if "teacher" not in res:  # distilled by the first run, reused by the next
                res["teacher"] = {k: teacher[k] for k in TEACHER_KEYS}
            losses = read_losses(run)
            r = {"set": cat, "teacher_reused": teacher["reused"], "run_s": round(wall, 1),
                 "first": losses[0], "last": losses[-1], **run_metrics(run, work / "ev" / cat)}
            res["runs"].append(r)
            print(f"[{wall:6.1f} s] {cat}: L_L {losses[0]['L_L']:.3f}→{losses[-1]['L_L']:.3f}; "
                  f"{r['image_auroc']:.3f} / {r['pixel_auroc']:.3f} / {r['aupro']:.3f}",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
