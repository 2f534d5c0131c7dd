"""Every method's training and inference throughput on this device, as the package runs
them (the compute page's per-method table; on a GPU the paper profile's cost by method).

For a *trained* method: its trainer (its reference teacher, random weights: the cost does
not depend on them), its reference batch (``multiad.methods``), 256×256, bf16 autocast and
channels-last on CUDA as training runs; the step timed with T's features given (as the
training loop runs it, T's features of the training images computed once) and with T in
the step, and T's forward alone. For a *fitted* method (PaDiM, PatchCore): its fit on
``--fit-images`` random images (default 300) at its reference batch, and the training
images' scores after it (``finish``). Then inference (``predict``: maps and scores) at the
evaluation batch, as evaluation runs it (the model in its default layout, bf16 autocast).
Peak GPU memory per method. Multi-AD itself is listed first for reference (its optimised
paths, CUDA graphs and compilation, are ``bench.py``'s).

    python benchmarks/bench_methods.py [--out benchmarks/results] [--methods padim,stfpm]

Writes ``<out>/<device>_methods_<stamp>.json`` after every method (a stopped run keeps
what it measured). On a CPU, or with ``--small``, a small version (64×64, few images).
"""

from __future__ import annotations

import argparse
import gc
import math
import tempfile
import time
import traceback
from typing import Any

import torch
from timing import sync, timed

METHOD_ORDER = ("multiad", "padim", "patchcore", "simplenet", "stfpm", "rd4ad", "mkd",
                "skip_ts", "mhkd")
# MHKD's teacher is a PDN distilled from WRN-101-2 (minutes at the reference's settings):
# its student's cost does not depend on how well the teacher was distilled
MHKD_TINY_TEACHER = ["mhkd.distill_steps=1", "mhkd.distill_batch_size=2",
                     "mhkd.distill_norm_images=2"]
MHKD_SMALL = ["mhkd.width=0.25", "mhkd.out_channels=64"]


def _images(n: int, size: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)


def _peak_gib(dev: torch.device) -> float | None:
    return round(torch.cuda.max_memory_allocated(dev) / 2**30, 2) if dev.type == "cuda" else None


def method_config(method: str, size: int, dev: torch.device, cache_dir: str,
                  extra: list[str] | None = None) -> Any:
    """The run configuration of ``method`` as a profile run gets it: its reference teacher
    (random weights) and schedule, at ``size``."""
    from multiad.config import RunConfig

    return RunConfig().with_overrides([
        f"method={method}", "teacher.weights=random", f"data.image_size={size}",
        f"data.cache_dir={cache_dir}", f"train.device={dev}", "train.deterministic=false",
        *(MHKD_TINY_TEACHER if method == "mhkd" else []), *(extra or [])]).validate()


def _steps(batch: int, small: bool) -> int:
    """Timed steps: 2 in the small version, else at least 8 and at least 64 images."""
    return 2 if small else max(8, math.ceil(64 / batch))


def bench_inference(model: Any, method: str, size: int, batch: int, dev: torch.device,
                    amp: bool, iters: int) -> dict[str, Any]:
    """``predict`` at the evaluation batch, as ``multiad.evaluate.infer`` runs it."""
    from multiad.data import normalize

    model.eval()
    if dev.type == "cuda":  # as evaluation loads it (multiad.train.load_trained)
        model.to(memory_format=torch.contiguous_format)
    if method == "multiad":  # Ψ's calibration is the training images' (a placeholder here)
        model.mff.calibrate([(0.1, 0.01)] * 4)
    x = normalize(_images(batch, size, 2).to(dev), model.teacher.mean, model.teacher.std)

    def run() -> None:
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp and dev.type == "cuda"):
            model.predict(x)

    s = timed(run, dev, iters, warmup=1)
    return {"infer_batch": batch, "infer_img_per_s": round(batch / s, 1)}


def bench_trained(method: str, size: int, dev: torch.device, cache_dir: str, small: bool
                  ) -> dict[str, Any]:
    from multiad.methods import get_method

    # the small version: MHKD at a CPU's scale (as the smoke profile)
    extra = MHKD_SMALL if small and method == "mhkd" else []
    cfg = method_config(method, size, dev, cache_dir, extra)
    t0 = time.perf_counter()
    trainer = get_method(method).build(cfg, dev)
    build_s = time.perf_counter() - t0
    bs = cfg.train.batch_size
    x = trainer.prepare(_images(bs, size, 0))
    n = _steps(bs, small)
    out: dict[str, Any] = {"kind": "trained", "teacher": cfg.teacher.backbone, "batch": bs,
                           "epochs": cfg.train.epochs, "build_s": round(build_s, 1),
                           "timed_steps": n}
    if method == "mhkd":
        out["teacher_note"] = "in the step: the PDN distilled from it"
    t_feats = trainer.teacher_forward(x)  # what the training loop's cache holds
    s = timed(lambda: trainer.teacher_forward(x), dev, n)
    out["teacher_img_per_s"] = round(bs / s, 1)
    s = timed(lambda: trainer.step(x, t_feats), dev, n)
    out["train_img_per_s"] = round(bs / s, 1)
    out["step_ms"] = round(s * 1e3, 2)
    s = timed(lambda: trainer.step(x), dev, n)
    out["train_img_per_s_teacher_in_step"] = round(bs / s, 1)
    out["train_peak_gib"] = _peak_gib(dev)
    out.update(bench_inference(trainer.model, method, size, cfg.train.eval_batch_size, dev,
                               cfg.train.amp, 2 if small else 8))
    return out


def bench_fitted(method: str, size: int, dev: torch.device, cache_dir: str, n_fit: int,
                 small: bool) -> dict[str, Any]:
    from multiad.methods import get_method

    cfg = method_config(method, size, dev, cache_dir)
    t0 = time.perf_counter()
    fitter = get_method(method).build(cfg, dev)
    out: dict[str, Any] = {"kind": "fitted", "teacher": cfg.teacher.backbone,
                           "batch": cfg.train.batch_size,
                           "build_s": round(time.perf_counter() - t0, 1)}
    images = _images(n_fit, size, 0)
    sync(dev)
    t0 = time.perf_counter()
    with torch.no_grad():
        meta = fitter.fit(images, progress=False)
        sync(dev)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        fitter.finish(images, progress=False)  # the training images' scores, as fit_run
        sync(dev)
    out.update({"fit_images": n_fit, "fit_s": round(fit_s, 2),
                "fit_img_per_s": round(n_fit / fit_s, 1),
                "finish_s": round(time.perf_counter() - t0, 2), **meta,
                "fit_peak_gib": _peak_gib(dev)})
    del images
    out.update(bench_inference(fitter.model, method, size, cfg.train.eval_batch_size, dev,
                               cfg.train.amp, 2 if small else 8))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="benchmarks/results")
    p.add_argument("--device", default="auto")
    p.add_argument("--methods", default=",".join(METHOD_ORDER))
    p.add_argument("--size", type=int, default=0, help="image side (default 256; small: 64)")
    p.add_argument("--fit-images", type=int, default=0,
                   help="images PaDiM and PatchCore fit on (default 300; small: 16)")
    p.add_argument("--small", action="store_true", help="the CPU-sized version")
    args = p.parse_args(argv)
    from result_file import result_path, write_result

    from multiad.methods import get_method
    from multiad.provenance import provenance, select_device

    dev = select_device(args.device)
    small = args.small or dev.type != "cuda"
    size = args.size or (64 if small else 256)
    n_fit = args.fit_images or (16 if small else 300)
    torch.backends.cudnn.benchmark = True  # as training runs (train.deterministic=false)
    res: dict[str, Any] = {"kind": "methods", "profile": "small" if small else "full",
                           "image_size": size, **provenance(dev)}
    info = res["device"]
    res["device"] = (info["name"] if dev.type == "cuda"
                     else f"{info['name']} ({info['cores']} cores)")
    res["device_info"] = info
    res["weights"] = "random (the cost does not depend on them)"
    res["methods"] = {}
    path = result_path(res, args.out, "methods")
    with tempfile.TemporaryDirectory() as cache_dir:
        for method in [m for m in args.methods.split(",") if m]:
            t0 = time.perf_counter()
            if dev.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(dev)
            try:
                if get_method(method).trained:
                    r = bench_trained(method, size, dev, cache_dir, small)
                else:
                    r = bench_fitted(method, size, dev, cache_dir, n_fit, small)
            except Exception as exc:  # a failing method is recorded, the others still run
                r = {"error": f"{type(exc).__name__}: {exc}"[:500],
                     "traceback": traceback.format_exc(limit=6)}
            r["wall_s"] = round(time.perf_counter() - t0, 1)
            res["methods"][method] = r
            gc.collect()
            write_result(res, args.out, "methods", path)
            print(f"[{r['wall_s']:6.1f} s] {method}: "
                  f"{ {k: v for k, v in r.items() if k != 'traceback'} }", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
