"""`make bench`: throughput and memory of Multi-AD on the current device, as JSON.

Measures, in one run: the plain eager training step (fp32, contiguous) and the optimised
one (bf16 autocast + channels-last, then the whole step as a CUDA graph, then several
models' graphs replayed concurrently on separate streams), per component (teacher
forward, student forward/backward, D step, maps), inference (maps + scores), and the
exact pixel metrics over 250 M pixels (on CPU too, each in a fresh process so that its
peak memory is measured). Also checks that the optimised path's losses
follow the plain path's within bf16 tolerance. On CPU the network parts run at a small size
(the metrics still at full scale); `--small` shrinks the metrics too.

    python benchmarks/bench.py [--out benchmarks/results] [--small]
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from timing import timed

from multiad.atomic import write_json
from multiad.compute_floor import datasheet_tflops, floor_img_per_s, measured_bf16_tflops
from multiad.config import COMPILE_MODES, RunConfig
from multiad.gaussian import gaussian_blur
from multiad.methods.multiad.anomaly_map import fuse_maps, image_score, layer_maps
from multiad.methods.multiad.mff import MultiScaleFusion
from multiad.methods.multiad.trainer import MultiADTrainer
from multiad.pipeline.profiles import load_profile
from multiad.provenance import provenance, select_device


def peak_gib(dev: torch.device) -> float | None:
    return round(torch.cuda.max_memory_allocated(dev) / 2**30, 2) if dev.type == "cuda" else None


def reset_peak(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(dev)


BACKBONE = "wide_resnet50_2"  # --backbone: the teacher the sections build (random weights
# for the paper's WRN-50-2, whose file may be absent; the offline backbones' own weights)
WEIGHTS = ""  # --teacher-weights: "" is that rule; "random" for any backbone


def teacher_weights() -> str:
    return WEIGHTS or ("random" if BACKBONE == "wide_resnet50_2" else "imagenet")


def make_cfg(size: int, batch: int, dev: torch.device, optimised: bool) -> RunConfig:
    weights = teacher_weights()
    return RunConfig().with_overrides([
        f"teacher.backbone={BACKBONE}", f"teacher.weights={weights}",
        f"data.image_size={size}",
        f"train.batch_size={batch}", f"train.device={dev}",
        f"train.amp={str(optimised).lower()}", f"train.channels_last={str(optimised).lower()}",
        "train.deterministic=false"])


def bench_components(size: int, batch: int, dev: torch.device, iters: int) -> dict[str, Any]:
    cfg = make_cfg(size, batch, dev, optimised=True)
    tr = MultiADTrainer(cfg, dev)
    x = tr.prepare(torch.randint(0, 255, (batch, 3, size, size), dtype=torch.uint8))
    out: dict[str, Any] = {}
    with tr.autocast():
        out["teacher_forward_img_per_s"] = batch / timed(lambda: tr.model.teacher(x), dev, iters)
        t_feats = tr.model.teacher(x)

    def student_fb() -> None:
        with tr.autocast():
            feats = tr.model.student(x)
        sum(f.float().mean() for f in feats).backward()

    out["student_fwd_bwd_img_per_s"] = batch / timed(student_fb, dev, iters)
    plain = MultiADTrainer(cfg.with_overrides(["multiad.dilation_rates=[1,1,1,1]"]), dev)

    def plain_fb() -> None:
        with tr.autocast():
            feats = plain.model.student(x)
        sum(f.float().mean() for f in feats).backward()

    out["student_no_dilation_fwd_bwd_img_per_s"] = batch / timed(plain_fb, dev, iters)
    disc = next(iter(tr.discriminators.values()))
    feat4 = t_feats[3].detach()

    def d_step() -> None:
        with tr.autocast():
            loss = disc(feat4).float().mean()
        loss.backward()

    out["discriminator_fwd_bwd_img_per_s"] = batch / timed(d_step, dev, iters)
    with tr.autocast():
        s_feats = [f.detach() for f in tr.model.student(x)]
    mff = MultiScaleFusion()
    mff.calibrate([(0.1, 0.01)] * 4)
    mff.to(dev)

    def maps() -> None:
        fused = fuse_maps(layer_maps(t_feats, s_feats), (size, size), mff)
        image_score(gaussian_blur(fused, 4.0))

    out["maps_and_score_img_per_s"] = batch / timed(maps, dev, iters)
    out = {k: round(v, 1) for k, v in out.items()}
    out.update(bench_adam(tr, dev, iters))
    out.update(bench_matmul(dev, iters))
    return out


def bench_matmul(dev: torch.device, iters: int) -> dict[str, Any]:
    """A large dense GEMM: the rate this device really reaches on the arithmetic the
    networks are made of (bf16 on CUDA; fp32, smaller, on a CPU). The compute floor of a
    training image is taken from it."""
    n, dtype = (8192, torch.bfloat16) if dev.type == "cuda" else (1024, torch.float32)
    a, b = (torch.randn(n, n, device=dev, dtype=dtype) for _ in range(2))
    s = timed(lambda: a @ b, dev, max(iters, 10))
    return {"matmul_n": n, "matmul_dtype": str(dtype).removeprefix("torch."),
            "matmul_tflops": round(2 * n**3 / s / 1e12, 2)}


def bench_adam(tr: MultiADTrainer, dev: torch.device, iters: int) -> dict[str, Any]:
    """One Adam update of S's and D's parameters: the fused kernel (one pass over memory,
    what training uses on CUDA) against the multi-tensor path (several passes)."""
    params = [*tr.model.student.parameters(), *tr.discriminators.parameters()]
    for p in params:
        p.grad = torch.full_like(p, 1e-3)
    out: dict[str, Any] = {"adam_params_m": round(sum(p.numel() for p in params) / 1e6, 1)}
    for name, how in (("fused", {"fused": True}), ("foreach", {"foreach": True})):
        try:
            opt = torch.optim.Adam(params, lr=1e-6, **how)
            out[f"adam_{name}_ms"] = round(timed(opt.step, dev, max(iters, 5)) * 1e3, 3)
        except (RuntimeError, ValueError) as exc:  # e.g. no fused kernel for this device
            out[f"adam_{name}_error"] = f"{type(exc).__name__}: {exc}"[:300]
    return out


def bench_train_eager(size: int, batch: int, dev: torch.device, iters: int,
                      optimised: bool) -> dict[str, Any]:
    reset_peak(dev)
    tr = MultiADTrainer(make_cfg(size, batch, dev, optimised), dev)
    if not optimised:  # the plain path as reference code runs it: PyTorch's default Adam
        for opt in (tr.opt_s, tr.opt_d):
            for group in opt.param_groups:
                group.update(fused=None, foreach=None)
    x = tr.prepare(torch.randint(0, 255, (batch, 3, size, size), dtype=torch.uint8))
    s = timed(lambda: tr.step(x), dev, iters)
    return {"img_per_s": round(batch / s, 1), "step_ms": round(s * 1e3, 2),
            "adam": "fused" if optimised else "PyTorch's default", "peak_gib": peak_gib(dev)}


def bench_train_graphed(size: int, batch: int, dev: torch.device, iters: int,
                        n_models: int, compile: bool = False, mode: str = "default"
                        ) -> dict[str, Any]:
    from multiad.engine.cuda_graph import GraphedStep
    from multiad.engine.cuda_rng import own_cuda_rng

    reset_peak(dev)
    steps = []
    for k in range(n_models):
        cfg = make_cfg(size, batch, dev, optimised=True).with_overrides(
            [f"train.seed={k}", f"train.compile={str(compile).lower()}",
             f"train.compile_mode={mode}"])
        steps.append(GraphedStep(MultiADTrainer(cfg, dev), (batch, 3, size, size),
                                 rng=own_cuda_rng(dev)))  # as train_many gives each run
    xs = [torch.randn(batch, 3, size, size, device=dev) for _ in range(n_models)]

    def all_models() -> None:
        for step, x in zip(steps, xs, strict=True):
            step(x)
        for step in steps:
            step.join()

    s = timed(all_models, dev, iters)
    return {"n_models": n_models, "compiled": compile, "compile_mode": mode if compile else None,
            "aggregate_img_per_s": round(n_models * batch / s, 1),
            "round_ms": round(s * 1e3, 2), "peak_gib": peak_gib(dev)}


def bench_train_many(size: int, batch: int, dev: torch.device, n_models: int,
                     compile: bool, n_train: int, epochs: int, mode: str = "default",
                     cache_teacher: bool = True) -> dict[str, Any]:
    """The real training loop (``multiad.train.train_many``, as `make reproduce` runs it):
    synthetic data decoded and cached, on the device, its epochs' order, loss bookkeeping,
    ``n_models`` runs at once. Aggregate img/s from the first epoch's end (compilation,
    graph capture and data loading excluded) to the end of the last but one (the last
    epoch writes the checkpoint and model)."""
    from multiad.data.synthetic import make_synthetic
    from multiad.train import train_many

    reset_peak(dev)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "synthetic"
        make_synthetic("texture", root, seed=0, size=size, n_train=n_train, n_test_good=2,
                       n_test_per_defect=1)
        fast = dev.type == "cuda"
        runs = [(make_cfg(size, batch, dev, optimised=True).with_overrides([
            "data.kind=synthetic", f"data.root={root}", "data.category=texture",
            f"data.cache_dir={Path(tmp) / 'cache'}", f"train.epochs={epochs}",
            f"train.checkpoint_every={epochs}",  # the timed epochs write no checkpoint
            f"train.seed={k}", f"train.cuda_graph={str(fast).lower()}",
            f"train.compile={str(fast and compile).lower()}", f"train.compile_mode={mode}",
            f"train.cache_teacher={str(cache_teacher).lower()}"]),
            Path(tmp) / f"run{k}")
            for k in range(n_models)]
        marks: dict[tuple[Path, int], float] = {}

        def hook(run_dir: Path, epoch: int) -> None:
            marks[(run_dir, epoch)] = time.perf_counter()

        train_many(runs, concurrent=n_models, progress=False, on_epoch_end=hook)
    t0 = min(t for (_, e), t in marks.items() if e == 1)
    t1 = max(t for (_, e), t in marks.items() if e == epochs - 1)
    images = n_models * n_train * (epochs - 2)
    return {"n_models": n_models, "compiled": compile and dev.type == "cuda",
            "compile_mode": mode if compile and dev.type == "cuda" else None,
            "graphed": dev.type == "cuda", "teacher_features_cached": cache_teacher,
            "n_train": n_train, "timed_epochs": epochs - 2,
            "aggregate_img_per_s": round(images / (t1 - t0), 1), "peak_gib": peak_gib(dev)}


def check_numerics(size: int, batch: int, dev: torch.device, steps: int,
                   compile: bool = False, mode: str = "default") -> dict[str, Any]:
    """The same init and batches through the plain fp32 path and the graphed bf16 path."""
    from multiad.engine.cuda_graph import GraphedStep

    g = torch.Generator().manual_seed(0)
    batches = [torch.randint(0, 255, (batch, 3, size, size), dtype=torch.uint8, generator=g)
               for _ in range(steps)]
    plain = MultiADTrainer(make_cfg(size, batch, dev, optimised=False), dev)
    fast_tr = MultiADTrainer(make_cfg(size, batch, dev, optimised=True).with_overrides(
        [f"train.compile={str(compile).lower()}", f"train.compile_mode={mode}"]), dev)
    fast = GraphedStep(fast_tr, (batch, 3, size, size))
    rows = []
    for b in batches:
        lp = {k: float(v) for k, v in plain.step(plain.prepare(b)).items()}
        out = fast(fast_tr.prepare(b))
        fast.join()
        lf = {k: float(v) for k, v in out.items()}
        rows.append({"plain": lp, "graphed_bf16": lf})
    rel = max(abs(r["plain"]["L_G"] - r["graphed_bf16"]["L_G"]) / abs(r["plain"]["L_G"])
              for r in rows)
    return {"steps": steps, "compiled": compile, "max_rel_diff_L_G": round(rel, 5), "losses": rows}


@torch.no_grad()
def bench_inference(size: int, batch: int, dev: torch.device, iters: int,
                    compile: bool = False, mode: str = "default") -> dict[str, Any]:
    from multiad.backbones import build_backbone
    from multiad.methods.multiad.torch_model import MultiADModel

    reset_peak(dev)
    cfg = make_cfg(size, batch, dev, optimised=True)
    teacher = build_backbone(BACKBONE, cfg.teacher.weights)
    model = MultiADModel(cfg, teacher).to(dev).eval()
    if compile:  # benchmark only: the compiled wrappers replace the submodules
        model.teacher = torch.compile(model.teacher, mode=mode)
        model.student = torch.compile(model.student, mode=mode)
    model.mff.calibrate([(0.1, 0.01)] * 4)
    x = torch.randn(batch, 3, size, size, device=dev)
    if dev.type == "cuda":
        model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)

    def run() -> None:
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            model.predict(x)

    eager = batch / timed(run, dev, iters)
    out: dict[str, Any] = {"batch": batch, "compiled": compile,
                           "compile_mode": mode if compile else None,
                           "eager_img_per_s": round(eager, 1),
                           "peak_gib": peak_gib(dev)}
    if dev.type == "cuda":
        try:
            out["graphed_img_per_s"] = round(batch / graphed_inference(model, x, dev, iters), 1)
        except Exception as exc:
            out["graphed_error"] = f"{type(exc).__name__}: {exc}"[:500]
    return out


def graphed_inference(model: Any, x: torch.Tensor, dev: torch.device, iters: int) -> float:
    """Seconds per batch of ``model.predict`` replayed from a CUDA graph."""
    s = torch.cuda.Stream(dev)
    s.wait_stream(torch.cuda.current_stream(dev))
    with torch.cuda.stream(s):
        for _ in range(3):
            with torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False):
                model.predict(x)
    torch.cuda.current_stream(dev).wait_stream(s)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph), torch.autocast("cuda", dtype=torch.bfloat16,
                                                 cache_enabled=False):
        model.predict(x)
    return timed(graph.replay, dev, iters)


def cpu_pixel_metrics(n_images: int, shift: float) -> dict[str, Any]:
    """``multiad.metrics.bench`` in a child process: timings and that process's peak RSS."""
    cmd = [sys.executable, "-m", "multiad.metrics.bench", "--n-images", str(n_images),
           "--shift", str(shift)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_section(results: dict[str, Any], name: str, fn: Callable[[], Any]) -> None:
    t0 = time.perf_counter()
    try:
        results[name] = fn()
    except Exception as exc:  # a failing section is recorded, the others still run
        results[name] = {"error": f"{type(exc).__name__}: {exc}",
                         "traceback": traceback.format_exc(limit=5)}
    print(f"[{time.perf_counter() - t0:7.1f} s] {name}: "
          f"{json.dumps(results[name])[:300]}", flush=True)


def main(argv: list[str] | None = None) -> int:
    global BACKBONE, WEIGHTS
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="benchmarks/results")
    p.add_argument("--device", default="auto")
    p.add_argument("--small", action="store_true", help="the CPU-sized version")
    p.add_argument("--models", default="1,2,4,8", help="concurrent model counts (CUDA)")
    p.add_argument("--compile", action="store_true", help="also time torch.compile'd steps")
    p.add_argument("--skip-plain", type=int, default=0, choices=(0, 1),
                   help="1: with --compile, time only the compiled graphed steps")
    p.add_argument("--compile-mode", default="default", choices=COMPILE_MODES,
                   help="torch.compile mode of the compiled sections (and of the loop's)")
    p.add_argument("--only", default="",
                   help="comma-separated section-name prefixes to run (e.g. train_loop,"
                        "inference): one part of the benchmark within a time limit")
    p.add_argument("--backbone", default=BACKBONE,
                   help="Multi-AD's teacher for every section (e.g. efficientnet_lite0)")
    p.add_argument("--teacher-weights", default="", choices=("", "random", "imagenet"),
                   help="the teacher's weights (default: random for WRN-50-2, whose file may "
                        "be absent, else the offline backbone's own; the cost does not "
                        "depend on them)")
    p.add_argument("--loop-images", type=int, default=512,
                   help="training images of each run of the train_loop sections (CUDA)")
    p.add_argument("--loop-epochs", type=int, default=5,
                   help="epochs of the train_loop sections (CUDA; ≥ 3: the first and the "
                        "last are not timed)")
    args = p.parse_args(argv)
    if args.loop_epochs < 3:
        p.error("--loop-epochs must be ≥ 3 (the first and the last epoch are not timed)")
    BACKBONE, WEIGHTS = args.backbone, args.teacher_weights
    dev = select_device(args.device)
    torch.backends.cudnn.benchmark = True  # the fastest kernels (the paper profile's choice)
    small = args.small or dev.type != "cuda"
    size, batch = (64, 4) if small else (256, 16)
    iters = 2 if small else 20
    res: dict[str, Any] = {"profile": "small" if small else "full", "image_size": size,
                           "batch_per_model": batch, **provenance(dev)}
    info = res["device"]
    res["device"] = (info["name"] if dev.type == "cuda"
                     else f"{info['name']} ({info['cores']} cores)")
    res["device_info"] = info
    res["compile_mode"] = args.compile_mode
    res["backbone"] = BACKBONE
    res["teacher_weights"] = teacher_weights()
    only = tuple(v for v in args.only.split(",") if v)
    if only:
        res["only"] = list(only)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    dev_name = re.sub(r"[^A-Za-z0-9]+", "-", res["device"]).strip("-")
    suffix = "" if BACKBONE == "wide_resnet50_2" else f"_{BACKBONE}"
    path = Path(args.out) / f"{dev_name}_{stamp}{suffix}.json"

    def section(name: str, fn: Callable[[], Any]) -> None:
        if not only or name.startswith(only):
            run_section(res, name, fn)
            summarize(res)
            write_json(path, res)  # after every section: a stopped run keeps what it measured

    mode = args.compile_mode
    tag = "_compiled" if mode == "default" else "_compiled_autotune"
    section("components", lambda: bench_components(size, batch, dev, iters))
    section("train_eager_fp32", lambda: bench_train_eager(size, batch, dev, iters,
                                                          optimised=False))
    section("train_eager_bf16_cl", lambda: bench_train_eager(size, batch, dev, iters,
                                                             optimised=True))
    if dev.type == "cuda":
        section("numerics", lambda: check_numerics(size, batch, dev, 5))
        for compiled in ((False, True) if args.compile else (False,))[args.skip_plain:]:
            if compiled:
                section(f"numerics{tag}",
                        lambda: check_numerics(size, batch, dev, 5, compile=True, mode=mode))
            for k in (int(v) for v in args.models.split(",")):
                section(f"train_graphed{tag if compiled else ''}_x{k}",
                        lambda k=k, c=compiled: bench_train_graphed(
                            size, batch, dev, iters, k, compile=c, mode=mode))
        # the loop `make reproduce` runs, with the paper profile's step (graphed, compiled)
        # and its concurrency, and one run alone for comparison
        paper = load_profile("paper")
        compiled = bool(paper.config.get("train.compile"))
        loop_tag = "" if mode == "default" else "_autotune"
        n_loop, e_loop = args.loop_images, args.loop_epochs
        for k in sorted({1, paper.concurrent}):
            section(f"train_loop{loop_tag}_x{k}", lambda k=k: bench_train_many(
                size, batch, dev, k, compile=compiled, n_train=n_loop, epochs=e_loop,
                mode=mode))
        # the same with T run in every step instead of its features computed once
        k = paper.concurrent
        section(f"train_loop{loop_tag}_teacher_per_step_x{k}", lambda: bench_train_many(
            size, batch, dev, k, compile=compiled, n_train=n_loop, epochs=e_loop, mode=mode,
            cache_teacher=False))
    else:
        section("train_loop_x2", lambda: bench_train_many(
            size, batch, dev, 2, compile=False, n_train=8, epochs=3))
        section("train_loop_teacher_per_step_x2", lambda: bench_train_many(
            size, batch, dev, 2, compile=False, n_train=8, epochs=3, cache_teacher=False))
    ibatch = 8 if small else 128
    section("inference", lambda: bench_inference(size, ibatch, dev, iters))
    if dev.type == "cuda" and args.compile:
        for b in (128, 256):
            section(f"inference{tag}_b{b}", lambda b=b: bench_inference(
                size, b, dev, iters, compile=True, mode=mode))
    n_img = 40 if args.small else 3815  # 3,815 × 256² ≈ 250 M pixels, on every device
    if dev.type == "cuda":
        from multiad.metrics.bench import time_pixel_metrics

        section("pixel_metrics", lambda: time_pixel_metrics(n_img, 256, dev))
    else:  # in a fresh process each, so that its peak memory is the metrics' own
        section("pixel_metrics", lambda: cpu_pixel_metrics(n_img, 0.4))
        section("pixel_metrics_overlapping", lambda: cpu_pixel_metrics(n_img, 0.0))
    summarize(res)
    write_json(path, res)
    print(f"wrote {path}  (machine: {platform.node()})")
    return 0


def summarize(res: dict[str, Any]) -> None:
    """The headline keys, from whichever sections ran (None where none measured it)."""
    size = res["image_size"]

    def best(keys: tuple[str, ...], *prefixes: str) -> tuple[float | None, str | None]:
        """The fastest section named ``prefix…``, and its name."""
        found = [(sec.get(k), name) for name, sec in res.items() if isinstance(sec, dict)
                 and name.startswith(prefixes) for k in keys if sec.get(k)]
        return max(found, default=(None, None))

    eager = res.get("train_eager_fp32", {}).get("img_per_s")
    res["train_img_per_s_eager"] = eager
    # the optimised step alone (as in earlier files); the real loop is reported beside it
    rate, src = best(("aggregate_img_per_s", "img_per_s"), "train_graphed",
                     "train_eager_bf16_cl")
    res["train_img_per_s"], res["train_img_per_s_from"] = rate, src
    res["train_loop_img_per_s"], res["train_loop_img_per_s_from"] = best(
        ("aggregate_img_per_s",), "train_loop")
    res["infer_img_per_s"], res["infer_img_per_s_from"] = best(
        ("graphed_img_per_s", "eager_img_per_s"), "inference")
    pm = res.get("pixel_metrics", {})
    full_scale = pm.get("n_pixels", 0) >= 250e6
    res["pixel_auroc_250M_s"] = pm.get("pixel_auroc_s") if full_scale else None
    res["aupro_250M_s"] = pm.get("aupro_s") if full_scale else None
    res["pixel_metrics_note"] = (None if full_scale or "n_pixels" not in pm else
                                 f"small run: {pm['n_pixels']} pixels; not extrapolated")
    if res["train_img_per_s"] and eager:
        res["speedup_vs_eager"] = round(res["train_img_per_s"] / eager, 2)
    # the compute floor: every FLOP of a training image at the measured bf16 GEMM rate
    # (what the device reaches), and at its data-sheet peak (multiad.compute_floor)
    gemm = measured_bf16_tflops(res.get("components") or {})
    sheet = datasheet_tflops(res["device"])
    for key, tflops in (("", gemm), ("datasheet_", sheet)):
        if tflops and res["train_img_per_s"]:
            floor = floor_img_per_s(tflops, size)
            res[f"{key}compute_floor_img_per_s"] = round(floor)
            res[f"fraction_of_{key}floor"] = round(res["train_img_per_s"] / floor, 3)

if __name__ == "__main__":
    raise SystemExit(main())
