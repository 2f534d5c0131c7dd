"""The interpretations page's record of Multi-AD's adversarial term
(``benchmarks/multiad_adversarial.py``, the newest file): the variants at the first epoch
count with their validation and test metrics, the ratio chosen on the validation, and the
longer runs as a figure (over-generalisation)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SET_NAMES = {"texture": "textures", "medical": "phantoms", "realtex": "real gravel"}


def _commit(r: dict[str, Any]) -> str:
    return f"`{(r.get('commit') or 'unknown')[:7]}`"


def _lam(lam: float | None) -> str:
    """An epoch's mean λ as the study recorded it (rounded to 4 decimals)."""
    if lam is None or lam != lam:
        return "—"
    return "< 0.0001" if lam == 0 else f"{lam:.2g}"


def choice_table(r: dict[str, Any], name: str) -> list[str]:
    first = [x for x in r["runs"] if x["epochs"] == r["epochs"]]
    out = ["| set | variant | validation image / pixel AUROC | test image AUROC | "
           "test pixel AUROC | test AUPRO | λ, last epoch | L_G, last epoch |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for x in first:
        last = x["curve"][-1]
        lam = last.get("lambda")
        chosen = " (chosen)" if x["variant"] == r["chosen"] else ""
        out.append(f"| {SET_NAMES.get(x['set'], x['set'])} | {x['variant']}{chosen} | "
                   f"{x['val_image_auroc']:.3f} / {x['val_pixel_auroc']:.3f} | "
                   f"{x['image_auroc']:.3f} | {x['pixel_auroc']:.3f} | {x['aupro']:.3f} | "
                   f"{_lam(lam)} | "
                   f"{last['L_G']:.3f} |")
    out.append(f"\n{r['n_train']} normal training images, {r['holdout']:.0%} of them held "
               f"out for the validation, {r['image_size']}×{r['image_size']}, "
               f"{r['epochs']} epochs, batch {r['batch_size']}, backbone `{r['backbone']}`, "
               f"seed 0, last epoch, {r['device']}, commit {_commit(r)}, file `{name}`. "
               f"Chosen on the validation alone: **{r['chosen']}**.\n")
    return out


def epochs_figure(r: dict[str, Any], png: Path) -> bool:
    """Validation and test AUROC against epochs, D off against the chosen variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = list(dict.fromkeys(x["set"] for x in r["runs"]))
    variants = ["D off", r["chosen"]]
    fig, axes = plt.subplots(2, len(sets), figsize=(4.2 * len(sets), 6.4), squeeze=False,
                             sharex=True)
    for j, s in enumerate(sets):
        for variant, style in zip(variants, ("--", "-"), strict=True):
            rows = sorted((x for x in r["runs"] if x["set"] == s and x["variant"] == variant),
                          key=lambda x: x["epochs"])
            if not rows:
                continue
            ep = [x["epochs"] for x in rows]
            for i, (kind, key) in enumerate((("image", "image_auroc"),
                                             ("pixel", "pixel_auroc"))):
                ax = axes[i][j]
                ax.plot(ep, [x[key] for x in rows], style, marker="o", color="C0",
                        label=f"{variant}: test")
                ax.plot(ep, [x[f"val_{key}"] for x in rows], style, marker="s", color="C1",
                        label=f"{variant}: validation")
                ax.set_title(f"{SET_NAMES.get(s, s)}, {kind} AUROC", fontsize=10)
                ax.set_xscale("log", base=2)
                ax.set_xticks(ep, [str(e) for e in ep])
                ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("epochs")
    axes[0][0].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return True


def adversarial_section(results: Path, out_dir: Path) -> str:
    files = sorted(results.glob("*_multiad_adversarial_*.json"))
    if not files:
        return "*No study of Multi-AD's adversarial term has been committed yet (make bench).*\n"
    r = json.loads(files[-1].read_text())
    out = choice_table(r, files[-1].name)
    if any(x["epochs"] != r["epochs"] for x in r["runs"]) and \
            epochs_figure(r, out_dir / "multiad_epochs.png"):
        out += ["", "![Validation and test AUROC against epochs, D off and the chosen "
                "variant, each set](multiad_epochs.png)", "",
                f"Runs extended from {r['epochs']} to {', '.join(map(str, r['long']))} epochs "
                "(the same runs, fixed schedule); test AUROC shown, never used to choose.\n"]
    return "\n".join(out)
