"""SimpleNet's stability over seeds and epochs on the embedded sets (``make bench``, part 3).

The reference keeps the best *test* epoch of 40, and its numbers swing between epochs and
seeds. Here SimpleNet is trained as every method is (last epoch, no test-set selection) on
both embedded sets with the pretrained offline backbone, for several seeds; to *show* the
swings, each run is also evaluated after every ``--every`` epochs by extending the same
run (resume equals an uninterrupted run, tests/test_simplenet.py). Those intermediate
numbers are a diagnostic printed next to the last epoch's; nothing is chosen on them.

Setting: the quality-floor setting of tests/test_quality.py (32 normal training images,
256×256, batch 8, EfficientNet-Lite0), ``simplenet.noise_std`` 0.5 (the offline backbone's
feature scale, ``book/baselines.md``), and the reference's 0.015 for seed 0 to show what
it does on this backbone. Writes ``benchmarks/results/<device>_simplenet_seeds_<stamp>.json``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any


def _run(cat: str, seed: int, noise: float, epochs: int, every: int, work: Path
         ) -> dict[str, Any]:
    from quality_setting import quality_config, run_metrics

    from multiad.train import train

    cfg = quality_config("simplenet", cat, work, f"train.seed={seed}",
                         f"simplenet.noise_std={noise}", "train.keep_checkpoint=true")
    run = work / f"{cat}-{seed}-{noise}"
    curve, t0 = [], time.perf_counter()
    for ep in range(every, epochs + 1, every):
        train(cfg.with_overrides([f"train.epochs={ep}"]), run, progress=False)
        m = run_metrics(run, work / "eval" / f"{run.name}-{ep}")
        curve.append({"epoch": ep, **m})
    last = curve[-1]
    return {"set": cat, "seed": seed, "noise_std": noise, "epochs": epochs, "last": last,
            "curve": curve, "wall_s": round(time.perf_counter() - t0, 1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="benchmarks/results")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--every", type=int, default=2)
    args = p.parse_args(argv)
    from quality_setting import SETS, study

    with study("simplenet_seeds", args.out) as (res, work):
        for cat in SETS:
            plan = [(s, 0.5) for s in args.seeds] + [(args.seeds[0], 0.015)]
            for seed, noise in plan:
                r = _run(cat, seed, noise, args.epochs, args.every, work)
                res["runs"].append(r)
                print(f"[{r['wall_s']:6.1f} s] {cat} seed {seed} σ {noise}: "
                      + " ".join(f"ep{c['epoch']} {c['image_auroc']:.3f}/{c['pixel_auroc']:.3f}"
                                 for c in r["curve"]), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
