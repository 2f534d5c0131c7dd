"""Turn the committed benchmark JSONs into the Markdown tables of the book's compute page.

    python benchmarks/summarize.py [--results benchmarks/results] [--out book/_generated]

Every number comes from a file in ``benchmarks/results``; the file is named next to it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from adversarial_tables import adversarial_section
from paper_scale import paper_scale_table

from multiad.atomic import atomic_write
from multiad.compute_floor import (
    WRN50_GFLOP_256,
    datasheet_tflops,
    floor_img_per_s,
    measured_bf16_tflops,
    train_gflop_per_image,
)

# Multi-AD training images: Tables 2–3 (MVTec train 3,629; Brain 7,500; Liver 1,542;
# RESC 4,297) × 250 epochs. Table 4 has 7 settings besides the full model, but MFF acts
# after training, so only 3 of them train a new student (SE × D); the paper profile's
# extended ablation trains 4 more (no dilation, no fusion, two λ) on 5 MVTec categories
# (carpet 280, grid 264, bottle 209, screw 320, transistor 213) and the 3 medical sets.
TRAIN_IMAGES = {"mvtec": 3629, "brain": 7500, "liver": 1542, "retina": 4297}
EPOCHS = 250
ABLATION_EXTRA_SETTINGS = 7
ABLATION_EXTRA_TRAININGS = 3
EXTENDED_TRAININGS = 4
EXTENDED_IMAGES = 280 + 264 + 209 + 320 + 213 + 7500 + 1542 + 4297


def load(results: Path) -> list[tuple[str, dict[str, Any]]]:
    """The benchmark files of the paper's network (WRN-50-2; files written before the
    backbone was recorded are WRN-50-2 runs): the goals and tables are about it."""
    runs = [(p.name, json.loads(p.read_text())) for p in sorted(results.glob("*.json"))]
    return [(n, r) for n, r in runs if r.get("backbone", "wide_resnet50_2") == "wide_resnet50_2"
            and r.get("kind") not in OTHER_KINDS]


# result files that are not `bench.py`'s Multi-AD runs (each has a table of its own)
OTHER_KINDS = ("baselines", "simplenet_seeds", "skip_ts_forms", "mhkd_costs", "methods",
               "multiad_adversarial")
METHOD_TITLES = {"multiad": "Multi-AD", "padim": "PaDiM", "patchcore": "PatchCore",
                 "simplenet": "SimpleNet", "stfpm": "STFPM", "rd4ad": "RD4AD", "mkd": "MKD",
                 "skip_ts": "Skip-TS", "mhkd": "MHKD"}


def paper_profile_images() -> int:
    """Training images one method sees per epoch in the paper profile: the 18 datasets of
    Tables 2–3 and MVTec LOCO AD's five categories."""
    from multiad.data.expected import LOCO_COUNTS

    return sum(TRAIN_IMAGES.values()) + sum(c[0] for c in LOCO_COUNTS.values())


def methods_table(results: Path) -> str:
    """Every method's training and inference throughput (``benchmarks/bench_methods.py``),
    the newest file per device, with the GPU time its training would take in the paper
    profile at that rate (its reference epochs over every dataset, one run at a time)."""
    newest: dict[str, tuple[str, dict[str, Any]]] = {}
    for p in sorted(results.glob("*_methods_*.json")):
        r = json.loads(p.read_text())
        if r.get("profile") != "small":  # a CPU check at 64×64 times nothing comparable
            newest[r["device"]] = (p.name, r)
    if not newest:
        return "*No per-method benchmark has been committed yet (benchmarks/bench_methods.py).*\n"
    images = paper_profile_images()
    out = ["| device | method | teacher | batch | training img/s (T's features given) | "
           "T in the step | fit on N images | inference img/s (batch) | peak GiB | "
           "paper profile, training h | file |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for device, (name, r) in newest.items():
        for method, v in r["methods"].items():
            title = METHOD_TITLES.get(method, method)
            if "error" in v:
                out.append(f"| {device} | {title} | — | — | {v['error'][:120]} | — | — | — | "
                           f"— | — | `{name}` |")
                continue
            peak = v.get("train_peak_gib", v.get("fit_peak_gib"))
            infer = f"{fmt(v.get('infer_img_per_s'))} ({v.get('infer_batch', '?')})"
            if v.get("kind") == "fitted":
                fit = (f"{v['fit_s']:.1f} s for {v['fit_images']} ({fmt(v['fit_img_per_s'])} "
                       "img/s)")
                hours = images / v["fit_img_per_s"] / 3600
                cells = ["—", "—", fit]
            else:
                hours = images * v["epochs"] / v["train_img_per_s"] / 3600
                cells = [fmt(v["train_img_per_s"]),
                         fmt(v.get("train_img_per_s_teacher_in_step")), "—"]
            out.append(f"| {device} | {title} | {v['teacher']} | {v['batch']} | "
                       f"{' | '.join(cells)} | {infer} | {fmt(peak, 2)} | "
                       f"{hours:,.2f} | `{name}` |")
    setting = next(iter(newest.values()))[1]
    out.append(f"\n{setting['image_size']}×{setting['image_size']}, each method's reference "
               "teacher (random weights) and batch; bf16 autocast and channels-last on CUDA, "
               "each step eager (Multi-AD's graphed and compiled step is measured above). "
               f"The hours: {images:,} training images (Tables 2–3's 18 sets and MVTec LOCO "
               "AD's 5 categories) × the method's reference epochs at the rate in this row, "
               "one run at a time (the paper profile trains four at once, which fills the "
               "GPU better at small batches); a fitted method: one pass at its fit rate. "
               f"Commit {_commit(setting)}.\n")
    return "\n".join(out)


def other_backbones_section(results: Path) -> list[str]:
    """Multi-AD on teachers other than the paper's WRN-50-2 (``bench.py --backbone``)."""
    rows = []
    for p in sorted(results.glob("*.json")):
        d = json.loads(p.read_text())
        if (d.get("kind") in OTHER_KINDS or d.get("profile") not in ("full", "partial")
                or d.get("backbone", "wide_resnet50_2") == "wide_resnet50_2"):
            continue
        rows.append(f"| {label(p.name)} | {d['device']} | `{d['backbone']}` "
                    f"({d.get('teacher_weights', '?')} weights) | "
                    f"{fmt(d.get('train_img_per_s_eager'))} | "
                    f"{fmt((d.get('train_eager_bf16_cl') or {}).get('img_per_s'))} | "
                    f"{fmt(d.get('train_img_per_s'))} | {fmt(d.get('train_loop_img_per_s'))} | "
                    f"{fmt(d.get('infer_img_per_s'))} |")
    if not rows:
        return []
    return ["## Multi-AD with other teachers", "",
            "The same sections with another teacher and its student (`bench.py --backbone`; "
            "batch 16 per model, 256×256): e.g. the pretrained offline EfficientNet-Lite0 that "
            "`make demo` falls back to.", "",
            "| run | device | teacher | eager fp32 train img/s | eager bf16 + channels-last | "
            "optimised step img/s | training loop img/s | inference img/s |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |", *rows, ""]


def baselines_table(results: Path) -> str:
    """Fit and inference throughput and peak memory of PaDiM and PatchCore, ours and
    anomalib's side by side (``benchmarks/bench_baselines.py``), newest file per device."""
    newest: dict[str, tuple[str, dict[str, Any]]] = {}
    for p in sorted(results.glob("*_baselines_*.json")):
        r = json.loads(p.read_text())
        newest[r["device"]] = (p.name, r)
    if not newest:
        return "*No baseline benchmark has been committed yet (make bench).*\n"
    out = ["| device | method | implementation | fit (img/s) | inference (img/s) | "
           "peak memory (GiB) | file |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for device, (name, r) in newest.items():
        for method, title in (("padim", "PaDiM"), ("patchcore", "PatchCore")):
            for impl, label in (("ours", "this package"), ("anomalib", "anomalib")):
                v = r.get(f"{method}_{impl}", {})
                if "fit_img_per_s" in v:
                    cells = [fmt(v["fit_img_per_s"]), fmt(v["infer_img_per_s"]),
                             fmt(v["peak_rss_gib"], 2)]
                    if impl == "anomalib":
                        label = f"anomalib {v.get('anomalib', '')}".strip()
                else:
                    cells = [v.get("skipped") or v.get("error", "—"), "—", "—"]
                out.append(f"| {device} | {title} | {label} | {' | '.join(cells)} | "
                           f"`{name}` |")
    setting = next(iter(newest.values()))[1]
    out.append(f"\n{setting['n_train']} training and {setting['n_test']} test images at "
               f"{setting['image_size']}×{setting['image_size']}, backbone "
               f"`{setting['backbone']}`, commit {str(setting.get('commit'))[:10]}.\n")
    return "\n".join(out)


def _commit(r: dict[str, Any]) -> str:
    """A result's commit, and whether the tree it ran from had uncommitted changes."""
    dirty = " with uncommitted changes" if r.get("dirty") else ""
    return f"{str(r.get('commit'))[:10]}{dirty}"


def simplenet_seeds_table(results: Path) -> str:
    """SimpleNet over seeds and epochs on the embedded sets
    (``benchmarks/simplenet_seeds.py``), the newest file: the last epoch per seed, mean ± std
    over the seeds, and the intermediate epochs as a diagnostic."""
    files = sorted(results.glob("*_simplenet_seeds_*.json"))
    if not files:
        return "*No SimpleNet seed study has been committed yet (make bench).*\n"
    r = json.loads(files[-1].read_text())
    out = ["| set | σ noise | seed | image AUROC (last epoch) | pixel AUROC | AUPRO | "
           "image / pixel AUROC at epochs " + ", ".join(str(c["epoch"]) for c in
                                                        r["runs"][0]["curve"]) + " |",
           "| --- | --- | --- | --- | --- | --- | --- |"]
    for cat in dict.fromkeys(x["set"] for x in r["runs"]):
        for noise in dict.fromkeys(x["noise_std"] for x in r["runs"] if x["set"] == cat):
            rows = [x for x in r["runs"] if x["set"] == cat and x["noise_std"] == noise]
            for x in rows:
                last = x["last"]
                curve = " · ".join(f"{c['image_auroc']:.2f} / {c['pixel_auroc']:.2f}"
                                   for c in x["curve"])
                out.append(f"| {cat} | {noise} | {x['seed']} | {last['image_auroc']:.3f} | "
                           f"{last['pixel_auroc']:.3f} | {last['aupro']:.3f} | {curve} |")
            if len(rows) > 1:
                cells = []
                for k in ("image_auroc", "pixel_auroc", "aupro"):
                    v = np.array([x["last"][k] for x in rows])
                    cells.append(f"**{v.mean():.3f} ± {v.std(ddof=1):.3f}**")
                out.append(f"| {cat} | {noise} | mean ± std ({len(rows)} seeds) | "
                           f"{' | '.join(cells)} | |")
    out.append(f"\n{r['n_train']} normal training images at {r['image_size']}×"
               f"{r['image_size']}, batch {r['batch_size']}, backbone `{r['backbone']}`, "
               f"{r['device']}, commit {_commit(r)}, file `{files[-1].name}`. "
               "Intermediate epochs come from extending the same run; nothing is selected "
               "on them.\n")
    return "\n".join(out)


def skip_ts_forms_table(results: Path) -> str:
    """Skip-TS's loss forms and skip connections on the embedded sets
    (``benchmarks/skip_ts_forms.py``), the newest file: the training losses (first → last
    epoch; β·L_mac = L_DRKD − L_sim as recorded) next to the last epoch's test metrics."""
    files = sorted(results.glob("*_skip_ts_forms_*.json"))
    if not files:
        return "*No Skip-TS loss-form study has been committed yet (make bench).*\n"
    r = json.loads(files[-1].read_text())
    out = ["| set | variant | L_sim, epoch 1 → last | β·L_mac, epoch 1 → last | "
           "image AUROC | pixel AUROC | AUPRO | training s |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for x in r["runs"]:
        f, last = x["first"], x["last"]
        out.append(f"| {x['set']} | {x['variant']} | {f['sim']:.3f} → {last['sim']:.3f} | "
                   f"{f['loss'] - f['sim']:.3f} → {last['loss'] - last['sim']:.3f} | "
                   f"{x['image_auroc']:.3f} | {x['pixel_auroc']:.3f} | {x['aupro']:.3f} | "
                   f"{x['train_s']:.0f} |")
    out.append(f"\n{r['n_train']} normal training images at {r['image_size']}×"
               f"{r['image_size']}, {r['epochs']} epochs, batch {r['batch_size']}, backbone "
               f"`{r['backbone']}`, seed 0, last epoch, {r['device']}, commit "
               f"{_commit(r)}, file `{files[-1].name}`.\n")
    return "\n".join(out)


def mhkd_costs_table(results: Path) -> str:
    """MHKD's teacher distillation and its student on the embedded sets
    (``benchmarks/mhkd_costs.py``), the newest file."""
    files = sorted(results.glob("*_mhkd_costs_*.json"))
    if not files:
        return "*No MHKD cost study has been committed yet (make bench).*\n"
    r = json.loads(files[-1].read_text())
    t = r["teacher"]
    losses = t["losses"]
    out = [f"**Teacher:** distilled from `{r['backbone']}` on {t['distilled_on']}: "
           f"{t['steps']} steps of {t['batch_size']} draws at {t['image_size']}×"
           f"{t['image_size']} (width {t['width']}), **{t['wall_s']:.0f} s**, peak memory "
           f"**{t['peak_memory_mib'] / 1024:.2f} GiB** ({t['peak_memory_kind']}), "
           f"distillation loss {losses[0]['loss']:.3f} → {losses[-1]['loss']:.3f}; made "
           "once, reused by the second set.\n",
           "| set | L_L, epoch 1 → last | L_G | L_SG | image AUROC | pixel AUROC | AUPRO | "
           "run s (teacher included when made) |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for x in r["runs"]:
        f, last = x["first"], x["last"]
        out.append(f"| {x['set']} | {f['L_L']:.3f} → {last['L_L']:.3f} | "
                   f"{f['L_G']:.3f} → {last['L_G']:.3f} | {f['L_SG']:.4f} → "
                   f"{last['L_SG']:.4f} | {x['image_auroc']:.3f} | {x['pixel_auroc']:.3f} | "
                   f"{x['aupro']:.3f} | {x['run_s']:.0f}"
                   f"{'' if x['teacher_reused'] else ' (teacher made)'} |")
    out.append(f"\n{r['n_train']} normal training images at {r['image_size']}×"
               f"{r['image_size']}, {r['epochs']} epochs, batch {r['batch_size']}, settings "
               f"{', '.join(f'`{o}`' for o in r['overrides'])}, seed 0, last epoch, "
               f"{r['device']}, commit {_commit(r)}, file "
               f"`{files[-1].name}`.\n")
    return "\n".join(out)


def best_training(runs: list[tuple[str, dict[str, Any]]], prefix: str = "train_graphed"
                  ) -> dict[str, Any] | None:
    """The fastest measured optimised training configuration among the GPU files' sections
    named ``prefix…``: ``train_loop`` is the real loop `make reproduce` runs, ``train_graphed``
    the step alone."""
    found = _best_section(runs, prefix, ("aggregate_img_per_s",))
    if found is None:
        return None
    _, name, key, d = found
    return {"file": name, "section": key, **d[key]}


def full_reproduction_images() -> int:
    """Training images of Tables 2–4 (Table 4: 3 more trainings per dataset)."""
    return (1 + ABLATION_EXTRA_TRAININGS) * sum(TRAIN_IMAGES.values()) * EPOCHS


def _best_section(runs: list[tuple[str, dict[str, Any]]], prefix: str, keys: tuple[str, ...]
                  ) -> tuple[float, str, str, dict[str, Any]] | None:
    """The highest value of ``keys`` over the sections named ``prefix…`` of the GPU files:
    (value, file, section, the file's data)."""
    found = [(sec[k], n, key, d) for n, d in runs if d.get("profile") != "small"
             for key, sec in d.items() if key.startswith(prefix) and isinstance(sec, dict)
             for k in keys if sec.get(k)]
    return max(found, key=lambda f: f[0], default=None)


def _pixel_metric(runs: list[tuple[str, dict[str, Any]]], key: str, on_gpu: bool
                  ) -> tuple[float, str, float | None] | None:
    """The slowest case (separated or fully overlapping scores) of the newest full-scale
    measurement of ``key`` on the GPU, or on a 2-thread CPU: (seconds, file, peak GiB)."""
    newest = None
    for n, d in runs:  # files sort by date: the newest wins
        cases = [pm for k, pm in d.items() if k.startswith("pixel_metrics")
                 and isinstance(pm, dict) and pm.get("n_pixels", 0) >= 250e6
                 and pm.get("device", "").startswith("cuda") == on_gpu
                 and (on_gpu or pm.get("threads") == 2)]
        if cases:
            worst = max(cases, key=lambda pm: pm[key])
            newest = (worst[key], n, worst.get("peak_rss_gib"))
    return newest


def device_tag(name: str) -> str:
    """The device part of a result file's name (``NVIDIA-H100-80GB-HBM3_<tag>.json``)."""
    return name.split("_", 1)[0]


def goals_table(runs: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Each goal of the compute work against the best measurement of it, with its file."""
    def met(ok: bool) -> str:
        return "yes" if ok else "**no**"

    rows = []
    step = _best_section(runs, "train_graphed", ("aggregate_img_per_s",))
    if step:
        rate, n, key, d = step
        eager = d.get("train_img_per_s_eager") or max(
            (e.get("train_img_per_s_eager") or 0 for m, e in runs
             if device_tag(m) == device_tag(n)), default=0) or None
        ratio = f"; {rate / eager:.1f}× the eager fp32 step" if eager else ""
        rows.append(f"| training, the step alone (T in the step), aggregate | ≥ 1,500 img/s | "
                    f"{rate:,.0f} img/s{ratio} | {label(n)} `{key}` | {met(rate >= 1500)} |")
    loop = _best_section(runs, "train_loop", ("aggregate_img_per_s",))
    rows.append("| training, the loop `make reproduce` runs (T's features once) | ≥ 1,500 img/s | "
                + (f"{loop[0]:,.0f} img/s | {label(loop[1])} `{loop[2]}` | {met(loop[0] >= 1500)} |"
                   if loop else "not measured on a GPU yet | — | — |"))
    inf = _best_section(runs, "inference", ("graphed_img_per_s", "eager_img_per_s"))
    if inf:
        rows.append(f"| inference (maps + scores) | ≥ 5,000 img/s | {inf[0]:,.0f} img/s | "
                    f"{label(inf[1])} `{inf[2]}` | {met(inf[0] >= 5000)} |")
    for key, what, goal, on_gpu in (
            ("pixel_auroc_s", "exact pixel AUROC, 250 M px, GPU", 1, True),
            ("pixel_auroc_s", "exact pixel AUROC, 250 M px, 2-core CPU, ≤ 4 GiB", 60, False),
            ("aupro_s", "exact AUPRO, 250 M px, GPU", 5, True)):
        pm = _pixel_metric(runs, key, on_gpu)
        if pm:
            secs, n, peak = pm
            within = "" if on_gpu else f", {fmt(peak, 1)} GiB peak"
            ok = secs < goal and (on_gpu or (peak is not None and peak <= 4))
            rows.append(f"| {what} | < {goal} s | {secs:.2f} s{within} | {label(n)} | "
                        f"{met(ok)} |")
    best = loop or step
    if best:
        hours = full_reproduction_images() / best[0] / 3600
        rows.append(f"| Tables 2–4, GPU time (estimate below) | < 4 h | {hours:.1f} h at "
                    f"{best[0]:,.0f} img/s | {label(best[1])} `{best[2]}` | {met(hours < 4)} |")
    out = ["## Against the goals", "",
           "The best measurement of each goal among the files above (for the metrics, the "
           "slowest of the cases in the newest file).", "",
           "| goal | target | measured | run | met |", "| --- | --- | --- | --- | --- |",
           *rows, ""]
    if step:
        rate, n, key, d = step
        gemm = measured_bf16_tflops(d.get("components") or {})
        sheet = datasheet_tflops(d.get("device") or device_tag(n).replace("-", " "))
        parts = [f"{rate / floor_img_per_s(t):.0%} of the {floor_img_per_s(t):,.0f} img/s "
                 f"that {where} ({t:,.0f} TFLOP/s) allows"
                 for t, where in ((gemm, "the bf16 GEMM rate measured on this device"),
                                  (sheet, "its data-sheet dense BF16 peak")) if t]
        if parts:
            out += [f"**Compute floor.** A training image costs about "
                    f"{train_gflop_per_image():.0f} GFLOP (four WRN-50-2 forward passes of "
                    f"{WRN50_GFLOP_256} GFLOP at 256²: T's forward, S's forward, and S's "
                    f"backward at about two). The fastest step above runs at "
                    f"{' and '.join(parts)}; the sections below show where the rest of the "
                    "time goes.", ""]
    return out


def label(name: str) -> str:
    """The run's date-time tag: the file name without its device prefix and suffix."""
    return name.removesuffix(".json").split("_", 1)[-1]


def fmt(v: Any, nd: int = 1) -> str:
    return "—" if v is None else (f"{v:,.{nd}f}" if isinstance(v, float) else f"{v:,}")


def pixel_metrics_table(runs: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Exact pixel AUROC / AUPRO over ≈250 M pixels, on each device measured (GPU and CPU)."""
    rows = []
    for n, d in runs:
        for key in ("pixel_metrics", "pixel_metrics_overlapping"):
            pm = d.get(key)
            if not isinstance(pm, dict) or pm.get("n_pixels", 0) < 250e6:
                continue
            where = d["device"] if pm.get("device", "").startswith("cuda") else (
                f"{d['device']}, {pm.get('threads', '?')} threads")
            mem = (f"{pm['gpu_peak_extra_gib']:.2f} GiB GPU beyond the inputs"
                   if "gpu_peak_extra_gib" in pm else
                   f"{pm['peak_rss_gib']:.2f} GiB process peak" if "peak_rss_gib" in pm
                   else "—")
            case = "classes overlap fully" if pm.get("shift") == 0 else "separated"
            more = " | ".join(f"{pm[k]:.2f}" if isinstance(pm.get(k), float) else "—"
                              for k in ("pixel_ap_s", "pixel_f1_max_s", "aupimo_s"))
            rows.append(f"| {label(n)} | {where} | {pm['n_pixels']:,} | {case} | "
                        f"{pm['pixel_auroc_s']:.2f} | {pm['aupro_s']:.2f} | {more} | {mem} |")
    if not rows:
        return []
    return ["## Exact pixel metrics over 250 M pixels", "",
            "Synthetic maps with many tied scores (`multiad/metrics/bench.py`); goals: pixel "
            "AUROC under 1 s on the GPU and under 60 s on a 2-core CPU within 4 GiB, AUPRO "
            "under 5 s on the GPU. The CPU memory is the whole process (interpreter, torch, "
            "1.2 GB of maps and masks, the metrics).", "",
            "Pixel AP, pixel F1-max and AUPIMO run on the host (CUDA maps are copied); "
            "a dash: measured before they existed.", "",
            "| run | where | pixels | scores | pixel AUROC s | AUPRO s | pixel AP s "
            "| pixel F1-max s | AUPIMO s | memory |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |", *rows, ""]


def tables(runs: list[tuple[str, dict[str, Any]]]) -> str:
    full = [(n, d) for n, d in runs if d.get("profile") == "full"]
    lines = ["| run | device | torch | eager fp32 train img/s | optimised step img/s "
             "| training loop img/s | inference img/s | pixel AUROC 250 M px (s) "
             "| AUPRO 250 M px (s) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for n, d in full:
        lines.append(f"| {label(n)} | {d['device']} | {d['torch']} | "
                     f"{fmt(d.get('train_img_per_s_eager'))} | {fmt(d.get('train_img_per_s'))} | "
                     f"{fmt(d.get('train_loop_img_per_s'))} | "
                     f"{fmt(d.get('infer_img_per_s'))} | {fmt(d.get('pixel_auroc_250M_s'), 3)} | "
                     f"{fmt(d.get('aupro_250M_s'), 3)} |")
    out = ["Runs are named by their date-time tag: the file is "
           "`benchmarks/results/<device>_<tag>.json`.", "", "## Measured runs", "", *lines, ""]
    out += goals_table(runs)
    out += pixel_metrics_table(runs)
    # the network timings of a small (CPU) run are at 64² and batch 4: not comparable
    sized = [(n, d) for n, d in runs if d.get("profile") != "small"]
    steps = []
    for n, d in sized:
        for key, sec in d.items():
            if key.startswith("train_") and isinstance(sec, dict) and (
                    "img_per_s" in sec or "aggregate_img_per_s" in sec):
                steps.append(f"| {label(n)} | {key} | {sec.get('n_models', 1)} | "
                             f"{fmt(sec.get('aggregate_img_per_s', sec.get('img_per_s')))} | "
                             f"{fmt(sec.get('peak_gib'), 2)} |")
    comps = [(n, d["components"]) for n, d in sized
             if isinstance(d.get("components"), dict) and "error" not in d["components"]]
    if comps:
        out += ["## Components (batch 16, 256×256, bf16, channels-last, eager)", "",
                "| run | teacher fwd img/s | student fwd+bwd img/s | D fwd+bwd img/s | "
                "maps + score img/s | dense GEMM TFLOP/s |",
                "| --- | --- | --- | --- | --- | --- |",
                *[f"| {label(n)} | {fmt(c.get('teacher_forward_img_per_s'))} | "
                  f"{fmt(c.get('student_fwd_bwd_img_per_s'))} | "
                  f"{fmt(c.get('discriminator_fwd_bwd_img_per_s'))} | "
                  f"{fmt(c.get('maps_and_score_img_per_s'))} | "
                  + (f"{c['matmul_tflops']:,.1f} ({c.get('matmul_dtype', '?')}) |"
                     if "matmul_tflops" in c else "— |") for n, c in comps], ""]
    # Adam's cost does not depend on the image size: CPU (small) runs are comparable here
    adam = [(n, d) for n, d in runs if "adam_fused_ms" in (d.get("components") or {})]
    if adam:
        out += ["## One Adam update of S and D", "",
                "Once per training step, over the 86 M parameters of S and D: the fused "
                "kernel, which training uses, against PyTorch's default multi-tensor path.", "",
                "| run | device | parameters | fused ms | multi-tensor ms | ratio |",
                "| --- | --- | --- | --- | --- | --- |"]
        for n, d in adam:
            c = d["components"]
            f, m = c.get("adam_fused_ms"), c.get("adam_foreach_ms")
            ratio = f"{m / f:.1f}×" if f and m else "—"
            out.append(f"| {label(n)} | {d['device']} | {fmt(c.get('adam_params_m'))} M | "
                       f"{fmt(f, 2)} | {fmt(m, 2)} | {ratio} |")
        out.append("")
    out += ["## Training step variants (batch 16 per model, 256×256)", "",
            "| run | variant | models at once | img/s (aggregate) | peak GiB |",
            "| --- | --- | --- | --- | --- |", *steps, ""]
    infer = [f"| {label(n)} | {key} | {sec.get('batch')} | {fmt(sec.get('eager_img_per_s'))} | "
             f"{fmt(sec.get('graphed_img_per_s'))} | {fmt(sec.get('peak_gib'), 2)} |"
             for n, d in sized for key, sec in d.items()
             if key.startswith("inference") and isinstance(sec, dict) and "batch" in sec]
    out += ["## Inference variants (maps + scores, 256×256)", "",
            "| run | variant | batch | eager img/s | CUDA graph img/s | peak GiB |",
            "| --- | --- | --- | --- | --- | --- |", *infer, ""]
    for n, d in runs:
        if "variants" in d:
            out += [f"## Student forward + backward, batch {d['batch']} (run {label(n)})", "",
                    "| variant | layout | precision | img/s |", "| --- | --- | --- | --- |"]
            out += [f"| {k.split('/')[0]} | {k.split('/')[1]} | {k.split('/')[2]} | {fmt(v)} |"
                    for k, v in d["variants"].items()]
            out.append("")
    for n, d in runs:
        if "by_kind" in d and d.get("image_size") == 256:
            out += [f"## Where the optimised step's time goes (run {label(n)}, "
                    f"{d['device']['name']})", "",
                    f"The step {'compiled, ' if d.get('compiled') else ''}launched eagerly "
                    f"so that every kernel is seen ({d['step_ms_eager_launch']} ms per batch "
                    f"of {d['batch']}); T's forward, which computing its features once "
                    f"takes out of every step, costs {d['teacher_forward_ms']} ms.", "",
                    "| kind of kernel | ms per step | share |", "| --- | --- | --- |",
                    *[f"| {k} | {v['ms_per_step']:.2f} | {v['share']:.0%} |"
                      for k, v in d["by_kind"].items()], ""]
    loop, step = best_training(runs, "train_loop"), best_training(runs)
    best = loop or step
    if best:
        rate = best["aggregate_img_per_s"]
        t23 = sum(TRAIN_IMAGES.values()) * EPOCHS
        t4 = ABLATION_EXTRA_TRAININGS * t23
        t4_naive = ABLATION_EXTRA_SETTINGS * t23
        tx = EXTENDED_TRAININGS * EXTENDED_IMAGES * EPOCHS
        eager = max((d.get("train_img_per_s_eager") or 0) for _, d in full) or None

        def row(name: str, n: int, bold: bool = False) -> str:
            b = "**" if bold else ""
            return (f"| {name} | {n:,} | {b}{n / rate / 3600:.1f} h{b} | "
                    + (f"{n / eager / 3600:.1f} h |" if eager else "— |"))

        source = ("the training loop `make reproduce` runs" if loop else
                  "the training step alone")
        caveat = ("" if loop else "; the loop around the step (`train_loop_*`, data "
                  "indexing and loss bookkeeping) has not been measured on a GPU yet")
        out += ["## Estimated cost of the full reproduction", "",
                f"From the fastest measured configuration of {source} (`{best['section']}` "
                f"in run {label(best['file'])}: {rate:,.0f} img/s{caveat}) and the "
                "training-set sizes "
                f"({', '.join(f'{k} {v:,}' for k, v in TRAIN_IMAGES.items())}) × "
                f"{EPOCHS} epochs; evaluation time is small in comparison. Table 4's rows "
                "with MFF off re-evaluate the student of the row with MFF on (MFF acts after "
                "training), so Table 4 costs 3 trainings per dataset, not 7.", "",
                "| part | training images | at the optimised rate | at the eager rate |",
                "| --- | --- | --- | --- |",
                row("Tables 2–3 (18 models)", t23),
                row("Table 4 (3 more trainings × 18 datasets)", t4),
                row("**Tables 2–4**", t23 + t4, bold=True),
                row("Table 4 if every row trained (as 8 separate runs)", t4_naive),
                row("extended ablation (4 trainings × 8 datasets, optional)", tx), ""]
    return "\n".join(out)


def gpu_runs(folder: Path) -> str:
    """The end-to-end `make reproduce` runs on GPU machines (``benchmarks/gpu_runs``)."""
    out = []
    for p in sorted(folder.glob("*.json")):
        d = json.loads(p.read_text())
        out += [f"### {p.name}", "", f"{d['what']}: {d['device']}, torch {d['torch']}, "
                f"papermill {d['papermill']}, commit `{d['commit']}`. CUDA tests: "
                f"{d['cuda_tests']}.", "", "| notebook | result |", "| --- | --- |",
                *[f"| {k} | {v} |" for k, v in d["notebooks"].items()], "",
                "| run | trained in | image AUROC | pixel AUROC | train s | eval s |",
                "| --- | --- | --- | --- | --- | --- |",
                *[f"| {r['cell']} | {r['trained_in'] or '(here)'} | {r['image_auroc']:.3f} | "
                  f"{r['pixel_auroc']:.3f} | {fmt(r.get('train_wall_s'))} | "
                  f"{fmt(r.get('eval_wall_s'))} |" for r in d["runs"]], "",
                *([f"Wall time of the whole run: {d['wall_s'] / 60:.1f} min."]
                  if d.get("wall_s") else []), d.get("note", ""), ""]
    return "\n".join(out) if out else "*No GPU end-to-end run has been recorded yet.*\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--results", default="benchmarks/results")
    p.add_argument("--out", default="book/_generated")
    args = p.parse_args(argv)
    runs = load(Path(args.results))
    text = tables(runs) if runs else "*No benchmark results have been committed yet.*\n"
    text += "\n".join(["", *other_backbones_section(Path(args.results))])
    atomic_write(Path(args.out) / "compute_tables.md", lambda fh: fh.write(text))
    atomic_write(Path(args.out) / "baselines_bench.md",
                 lambda fh: fh.write(baselines_table(Path(args.results))))
    atomic_write(Path(args.out) / "methods_bench.md",
                 lambda fh: fh.write(methods_table(Path(args.results))))
    atomic_write(Path(args.out) / "simplenet_seeds.md",
                 lambda fh: fh.write(simplenet_seeds_table(Path(args.results))))
    atomic_write(Path(args.out) / "skip_ts_forms.md",
                 lambda fh: fh.write(skip_ts_forms_table(Path(args.results))))
    atomic_write(Path(args.out) / "mhkd_costs.md",
                 lambda fh: fh.write(mhkd_costs_table(Path(args.results))))
    section = adversarial_section(Path(args.results), Path(args.out))
    atomic_write(Path(args.out) / "multiad_adversarial.md", lambda fh: fh.write(section))
    scale = paper_scale_table(Path(args.results))
    atomic_write(Path(args.out) / "paper_scale.md", lambda fh: fh.write(scale))
    gpu = gpu_runs(Path(args.results).parent / "gpu_runs")
    atomic_write(Path(args.out) / "gpu_runs.md", lambda fh: fh.write(gpu))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
