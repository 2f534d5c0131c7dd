"""The paper profile at full size, on paper: its plan (``multiad.pipeline.plan``) costed at
the newest GPU rates (``benchmarks/results``), by method, and scheduled on 1, 4, 8 and 32
GPUs with its critical path (the book's compute page; ``make book`` writes it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

GPUS = (1, 4, 8, 32)
TITLES = {"multiad": "Multi-AD", "padim": "PaDiM", "patchcore": "PatchCore",
          "simplenet": "SimpleNet", "stfpm": "STFPM", "rd4ad": "RD4AD", "mkd": "MKD",
          "skip_ts": "Skip-TS", "mhkd": "MHKD", "efficientad": "EfficientAD"}
# a method measured on no GPU yet costed at the rates of the one whose step is its nearest:
# EfficientAD-S's student and autoencoder against MHKD's student, both at batch 1 on a PDN
STAND_INS = {"efficientad": "mhkd"}


def gpu_rates(results: Path) -> tuple[Any, list[str]]:
    """The newest GPU per-method rates; Multi-AD's the training loop the paper profile
    runs (four runs at once, compiled and graphed), where it was measured; stand-ins named."""
    from multiad.pipeline.plan_costs import benchmark_rates

    names = sorted({json.loads(p.read_text())["device"]
                    for p in results.glob("*_methods_*.json")})
    gpu = [n for n in names if "NVIDIA" in n]
    if not gpu:
        return None, []
    rates = benchmark_rates(gpu[-1], results)
    notes = [f"per-method rates: `{rates.source.split('/')[-1]}` ({gpu[-1]}, each method's "
             "own eager step at its reference batch)"]
    loops = []
    for p in sorted(results.glob("*.json")):
        d = json.loads(p.read_text())
        sec = d.get("train_loop_x4") or {}
        if (d.get("device") == gpu[-1] and sec.get("aggregate_img_per_s")
                and d.get("backbone", "wide_resnet50_2") == "wide_resnet50_2"):
            loops.append((sec["aggregate_img_per_s"], p.name))
    size = 256
    if loops:
        best, file = max(loops)
        rates.train[("multiad", size)] = best
        notes.append(f"Multi-AD: {best:,.0f} img/s, its training loop with four runs at once "
                     f"(`{file}`)")
    for method, like in STAND_INS.items():
        if (method, size) not in rates.train and (like, size) in rates.train:
            rates.train[(method, size)] = rates.train[(like, size)]
            rates.evaluate[(method, size)] = rates.evaluate[(like, size)]
            notes.append(f"{TITLES[method]}: not measured on a GPU yet, costed at "
                         f"{TITLES[like]}'s rates (its nearest step)")
    return rates, notes


def paper_scale_table(results: Path) -> str:
    from multiad.pipeline.plan_costs import paper_scale
    from multiad.pipeline.profiles import load_profile

    rates, notes = gpu_rates(results)
    if rates is None:
        return "*No per-method GPU benchmark has been committed yet.*\n"
    t = paper_scale(load_profile("paper"), rates, GPUS)
    rows = ["| method | trainings | training GPU-h | evaluation GPU-h | distilled teacher "
            "GPU-h | total |", "| --- | --- | --- | --- | --- | --- |"]
    total = 0.0
    for method, r in sorted(t["methods"].items(), key=lambda kv: -sum(
            v for k, v in kv[1].items() if k.endswith("_h"))):
        h = r["train_h"] + r["evaluate_h"] + r["prepare_h"]
        total += h
        rows.append(f"| {TITLES.get(method, method)} | {r['trainings']} | {r['train_h']:.1f} "
                    f"| {r['evaluate_h']:.2f} | {r['prepare_h']:.1f} | {h:.1f} |")
    rows.append(f"| **all** | {sum(r['trainings'] for r in t['methods'].values())} | | | | "
                f"**{total:.1f}** |")
    walls = " · ".join(f"{n} GPU{'s' if n > 1 else ''}: **{h:.1f} h**"
                       for n, h in t["wall_h"].items())
    path = " → ".join(f"`{s}`" for s in t["critical_path"])
    out = [f"The paper profile's plan: {t['steps']} steps (every dataset, method, seed and "
           "ablation cell, the distilled teachers first), costed from nothing at the rates "
           "below, one run after the other inside a training step of four (an upper bound: "
           "four at once fill a GPU better).", "", *rows, "",
           f"Wall time, each step a Ray task (a training step one GPU, an evaluation a "
           f"quarter), longest remaining chain first: {walls}.", "",
           f"Critical path ({t['critical_h']:.1f} h, which no number of GPUs shortens): "
           f"{path}.", "", "Rates: " + "; ".join(notes) + "."]
    if t["missing_rates"]:
        out.append(f"\nNo rate for {', '.join(t['missing_rates'])}: counted as 0 h.")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(paper_scale_table(Path(__file__).resolve().parent / "results"))
