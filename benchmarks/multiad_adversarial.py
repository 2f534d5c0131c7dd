"""Multi-AD's adversarial term measured, and its open setting chosen without test labels
(``make bench``; issue: Multi-AD at chance with λ = 0.1).

Setting: the quality-floor one (``benchmarks/quality_setting.py``: the embedded sets, 32
normal training images, the offline backbone, batch 8), with 15 % of the training images
held out for the label-free validation (``train.holdout``: the held-out images as they are
and with a pasted anomaly, :mod:`multiad.engine.validation`).

1. The choice: every variant below trained for ``--epochs``; the balanced ratio r with the
   best mean validation AUROC (image and pixel, over the sets) becomes the rule's value.
   Test metrics are recorded beside, never used.
2. Over-generalisation: the chosen variant and D off trained on to each of ``--long``
   epochs (the same runs extended, fixed schedule), validation and test metrics at each.

Writes ``benchmarks/results/<device>_multiad_adversarial_<stamp>.json``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

OFF = "D off"
FIXED = "fixed λ = 0.1"
RATIOS = (0.03, 0.1, 0.3, 1.0)
VARIANTS: dict[str, list[str]] = {
    OFF: ["multiad.discriminator=false"],
    FIXED: ["multiad.lambda_rule=fixed", "multiad.lambda_adv=0.1"],
    **{f"balanced r = {r:g}": ["multiad.lambda_rule=balanced", f"multiad.adv_ratio={r}"]
       for r in RATIOS},
    "balanced r = 0.1, D lr 1e-4": ["multiad.lambda_rule=balanced", "multiad.adv_ratio=0.1",
                                    "multiad.d_lr=0.0001"],
}


def _validation(losses: list[dict[str, float]]) -> dict[str, float]:
    last = losses[-1]
    return {"val_image_auroc": round(last["val_image_auroc"], 4),
            "val_pixel_auroc": round(last["val_pixel_auroc"], 4)}


def choose(runs: list[dict[str, Any]]) -> str:
    """The balanced variant with the best mean validation AUROC (image and pixel, over the
    sets); a tie goes to the smaller ratio (listed first)."""
    def score(name: str) -> float:
        rows = [r for r in runs if r["variant"] == name and r["epochs"] == r["first_epochs"]]
        return statistics.mean((r["val_image_auroc"] + r["val_pixel_auroc"]) / 2 for r in rows)

    names = [n for n in VARIANTS if n.startswith("balanced r = ") and "," not in n]
    return max(names, key=lambda n: (score(n), -names.index(n)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="benchmarks/results")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--long", default="16,32", help="epochs the long runs are extended to")
    p.add_argument("--holdout", type=float, default=0.15)
    args = p.parse_args(argv)
    long = [int(e) for e in args.long.split(",") if e]
    from quality_setting import SETS, quality_config, read_losses, run_metrics, study

    from multiad.train import train

    def run_to(cat: str, name: str, epochs: int, work: Path) -> dict[str, Any]:
        cfg = quality_config("multiad", cat, work, f"train.epochs={epochs}",
                             f"train.holdout={args.holdout}", "train.keep_checkpoint=true",
                             *VARIANTS[name])
        run = work / f"{cat}-{list(VARIANTS).index(name)}"
        t0 = time.perf_counter()
        train(cfg, run, progress=False)  # a longer run extends the shorter one's checkpoint
        losses = read_losses(run)
        r = {"set": cat, "variant": name, "overrides": VARIANTS[name], "epochs": epochs,
             "first_epochs": args.epochs, "train_s": round(time.perf_counter() - t0, 1),
             **_validation(losses),
             **run_metrics(run, work / "eval" / f"{run.name}-{epochs}"),
             "curve": [{k: round(v, 4) for k, v in row.items() if k != "seconds"}
                       for row in losses]}
        print(f"[{r['train_s']:6.1f} s] {cat} {name} @ {epochs}: validation "
              f"{r['val_image_auroc']:.3f} / {r['val_pixel_auroc']:.3f}; test "
              f"{r['image_auroc']:.3f} / {r['pixel_auroc']:.3f} / {r['aupro']:.3f}",
              flush=True)
        return r

    with study("multiad_adversarial", args.out, epochs=args.epochs, long=long,
               holdout=args.holdout) as (res, work):
        for cat in SETS:
            for name in VARIANTS:
                res["runs"].append(run_to(cat, name, args.epochs, work))
        res["chosen"] = choose(res["runs"])
        print(f"chosen on the validation: {res['chosen']}", flush=True)
        for cat in SETS:
            for name in (OFF, res["chosen"]):
                for epochs in long:
                    res["runs"].append(run_to(cat, name, epochs, work))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
