"""Skip-TS's open points measured (``make bench``): the paper's and the code's forms of its
losses, and its skip connections, on the embedded sets with the pretrained offline
backbone, in the quality-floor setting (``benchmarks/quality_setting.py``), 8 epochs.

Variants: the package's default (L_sim as the code, L_mac as Eq. 4), the code's L_mac
(MSE gaps between scales), the paper's L_sim (Eqs. 2–3, per position), no L_mac, and no
skip connections (the paper's "DRKD w/o SC"). For each: the first and last epoch's L_sim
and L_mac (the training side, on which the default was chosen) and the test metrics of the
last epoch. Writes ``benchmarks/results/<device>_skip_ts_forms_<stamp>.json``.
"""

from __future__ import annotations

import argparse
import time

VARIANTS = {
    "default (code L_sim, Eq. 4 L_mac)": [],
    "code L_mac (MSE gaps)": ["skip_ts.mac=mse_gaps"],
    "paper L_sim (Eqs. 2–3)": ["skip_ts.similarity=position"],
    "no L_mac": ["skip_ts.mac=none"],
    "no skip connections": ["skip_ts.skip=false"],
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="benchmarks/results")
    p.add_argument("--epochs", type=int, default=8)
    args = p.parse_args(argv)
    from quality_setting import SETS, quality_config, read_losses, run_metrics, study

    from multiad.train import train

    with study("skip_ts_forms", args.out, epochs=args.epochs) as (res, work):
        for cat in SETS:
            for i, (name, overrides) in enumerate(VARIANTS.items()):
                cfg = quality_config("skip_ts", cat, work, f"train.epochs={args.epochs}",
                                     *overrides)
                run, t0 = work / f"{cat}-{i}", time.perf_counter()
                train(cfg, run, progress=False)
                wall = time.perf_counter() - t0
                losses = read_losses(run)
                r = {"set": cat, "variant": name, "overrides": overrides,
                     "train_s": round(wall, 1), "first": losses[0], "last": losses[-1],
                     **run_metrics(run, work / "eval" / run.name)}
                res["runs"].append(r)
                print(f"[{wall:5.1f} s] {cat} {name}: L_sim {losses[0]['sim']:.3f}→"
                      f"{losses[-1]['sim']:.3f}, L_mac {losses[0]['mac']:.3f}→"
                      f"{losses[-1]['mac']:.3f}; {r['image_auroc']:.3f} / "
                      f"{r['pixel_auroc']:.3f} / {r['aupro']:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
