"""``make bench`` (part 2): fit and inference throughput and peak memory of the fitted
baselines, PaDiM and PatchCore, here and — where anomalib installs (``make
check-anomalib``) — anomalib's implementations side by side, on the same random images,
backbone and size (256×256 by default; the backbone's weights do not change the cost).

Each measurement runs in a fresh process, so its peak resident memory is its own.
Writes ``benchmarks/results/<device>_baselines_<stamp>.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import subprocess
import sys
import time
from typing import Any

import torch


def _images(n: int, size: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)


def _peak_gib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)  # KiB → GiB


def ours(method: str, backbone: str, size: int, n_train: int, n_test: int) -> dict[str, Any]:
    from multiad.config import RunConfig
    from multiad.methods import get_method

    weights = "random" if backbone in ("wide_resnet50_2", "resnet18") else "imagenet"
    cfg = RunConfig().with_overrides([
        f"method={method}", f"teacher.backbone={backbone}", f"teacher.weights={weights}",
        f"data.image_size={size}", "train.device=cpu"]).validate()
    fitter = get_method(method).build(cfg, torch.device("cpu"))
    train, test = _images(n_train, size, 0), _images(n_test, size, 1)
    t0 = time.perf_counter()
    with torch.no_grad():
        meta = fitter.fit(train, progress=False)
    fit_s = time.perf_counter() - t0
    model = fitter.model.eval()
    t0 = time.perf_counter()
    with torch.no_grad():
        for i in range(0, n_test, 8):
            model.predict(fitter.prepare(test[i:i + 8]))
    infer_s = time.perf_counter() - t0
    return {"fit_s": round(fit_s, 2), "fit_img_per_s": round(n_train / fit_s, 2),
            "infer_img_per_s": round(n_test / infer_s, 2), "peak_rss_gib": _peak_gib(), **meta}


def anomalib_model(method: str, backbone: str, size: int, n_train: int, n_test: int
                   ) -> dict[str, Any]:
    """anomalib's torch model with the same backbone (timm's architecture, random weights),
    the reference layers, driven as its Lightning module drives it."""
    from anomalib.models.image.padim.torch_model import PadimModel
    from anomalib.models.image.patchcore.torch_model import PatchcoreModel

    x_train = _images(n_train, size, 0).float() / 255
    x_test = _images(n_test, size, 1).float() / 255
    if method == "padim":
        model = PadimModel(backbone=backbone, layers=["layer1", "layer2", "layer3"],
                           pre_trained=False, n_features=550)
    else:
        model = PatchcoreModel(backbone=backbone, layers=["layer2", "layer3"],
                               pre_trained=False, num_neighbors=9)
    model.train()
    t0 = time.perf_counter()
    with torch.no_grad():
        emb = [model(x_train[i:i + 8]) for i in range(0, n_train, 8)]
        if method == "padim":
            model.gaussian.fit(torch.vstack(emb))
        else:
            model.subsample_embedding(0.1, torch.vstack(emb))
    fit_s = time.perf_counter() - t0
    model.eval()
    t0 = time.perf_counter()
    with torch.no_grad():
        for i in range(0, n_test, 8):
            model(x_test[i:i + 8])
    infer_s = time.perf_counter() - t0
    from importlib.metadata import version

    return {"fit_s": round(fit_s, 2), "fit_img_per_s": round(n_train / fit_s, 2),
            "infer_img_per_s": round(n_test / infer_s, 2), "peak_rss_gib": _peak_gib(),
            "anomalib": version("anomalib")}


def _child(impl: str, method: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", impl, method, "--backbone", args.backbone,
           "--size", str(args.size), "--n-train", str(args.n_train), "--n-test",
           str(args.n_test)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else
                f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="benchmarks/results")
    p.add_argument("--backbone", default="wide_resnet50_2")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--n-train", type=int, default=64)
    p.add_argument("--n-test", type=int, default=32)
    p.add_argument("--child", nargs=2, metavar=("IMPL", "METHOD"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        impl, method = args.child
        fn = ours if impl == "ours" else anomalib_model
        print(json.dumps(fn(method, args.backbone, args.size, args.n_train, args.n_test)))
        return 0
    from result_file import write_result

    from multiad.provenance import provenance

    have_anomalib = importlib.util.find_spec("anomalib") is not None
    res: dict[str, Any] = {"kind": "baselines", "backbone": args.backbone,
                           "image_size": args.size, "n_train": args.n_train,
                           "n_test": args.n_test, **provenance(torch.device("cpu"))}
    info = res["device"]
    res["device"] = f"{info['name']} ({info['cores']} cores)"
    for method in ("padim", "patchcore"):
        for impl in ("ours", "anomalib"):
            if impl == "anomalib" and not have_anomalib:
                res[f"{method}_{impl}"] = {"skipped": "anomalib not installed "
                                                      "(make check-anomalib installs it)"}
                continue
            t0 = time.perf_counter()
            res[f"{method}_{impl}"] = _child(impl, method, args)
            print(f"[{time.perf_counter() - t0:6.1f} s] {method} {impl}: "
                  f"{json.dumps(res[f'{method}_{impl}'])[:200]}", flush=True)
    write_result(res, args.out, "baselines")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
