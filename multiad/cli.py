"""``multiad`` command line: train, evaluate, predict, make-synthetic, check-data, run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from multiad.backbones import BACKBONES
from multiad.cli_errors import USER_ERRORS, is_user_error, user_message
from multiad.config import DATA_KINDS, RunConfig
from multiad.data.synthetic import SYNTHETIC_CATEGORIES
from multiad.methods import METHODS

EPILOG = """examples:
  multiad run --data synthetic --category texture --out runs/demo --set train.epochs=5
  multiad run --data folder --root my_parts --backbone efficientnet_lite0 --out runs/parts
  multiad train --data mvtec --root /data/mvtec --category bottle --out runs/bottle
  multiad evaluate runs/bottle
  multiad predict runs/bottle my_images/ --out predictions/
  multiad check-data --data brain --root /data/BMAD/Brain_AD
"""


def _config_from_args(args: argparse.Namespace) -> RunConfig:
    """The run's configuration: ``--config``, then ``--set``, then the flags; with
    ``--teacher-weights auto`` made concrete (the backbone it chose is what is recorded)."""
    from multiad.config import resolve_auto_teacher

    cfg = RunConfig.load(args.config) if args.config else RunConfig()
    overrides = []
    if args.data is not None and args.category is None and args.data != cfg.data.kind:
        # another kind of data: the default category (synthetic 'texture') is not its own;
        # an MVTec run names its category, a folder run needs none
        overrides.append("data.category=null")
    overrides += list(args.set or [])
    for flag, key in (("data", "data.kind"), ("root", "data.root"),
                      ("category", "data.category"), ("image_size", "data.image_size"),
                      ("epochs", "train.epochs"), ("seed", "train.seed"),
                      ("device", "train.device"), ("backbone", "teacher.backbone"),
                      ("teacher_weights", "teacher.weights"), ("method", "method")):
        value = getattr(args, flag, None)
        if value is not None:
            overrides.append(f"{key}={value}")
    return resolve_auto_teacher(cfg.with_overrides(overrides).validate())


def _add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML/JSON config file (see multiad.config.RunConfig)")
    p.add_argument("--data", choices=DATA_KINDS, help="dataset kind")
    p.add_argument("--root", help="dataset folder (for synthetic: where it is generated)")
    p.add_argument("--category", help="MVTec category, or synthetic 'texture' / 'medical' / "
                   "'loco' / 'realtex'")
    p.add_argument("--image-size", type=int)
    p.add_argument("--epochs", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="auto (default), cpu, cuda, cuda:1 …")
    p.add_argument("--method", choices=list(METHODS),
                   help="multiad (default, the paper's method) or a baseline: "
                        + ", ".join(n for n in METHODS if n != "multiad"))
    p.add_argument("--backbone", choices=list(BACKBONES),
                   help="the frozen teacher (default: the method's reference, e.g. "
                        "wide_resnet50_2 for Multi-AD), or efficientnet_lite0/2 (pretrained, "
                        "installed offline)")
    p.add_argument("--teacher-weights",
                   help="imagenet (default: the backbone's pretrained file), a path to it, "
                        "auto (the backbone's file if it can be had, else the offline "
                        "efficientnet_lite0), or random (tests only; recorded in every result)")
    p.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                   help="override any config key, e.g. --set multiad.se=false (repeatable)")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--fresh", action="store_true",
                   help="discard an existing run in --out instead of resuming it")


def _summary(result: dict) -> str:
    m = result["metrics"]
    keys = ("image_auroc", "pixel_auroc", "aupro", "image_f1_max")
    parts = [f"{k}={m[k]:.4f}" for k in keys if isinstance(m.get(k), float)]
    t = result["teacher"]
    teacher = f"{t.get('backbone', 'wide_resnet50_2')}, {t['kind']}"
    return f"{result['data']['name']}: " + "  ".join(parts) + f"  (teacher: {teacher})"


def cmd_train(args: argparse.Namespace) -> int:
    from multiad.train import train

    cfg = _config_from_args(args)
    # --fresh: the old run's files go only once this configuration and its data were read,
    # and only from a run folder (multiad.engine.run_lock)
    path = train(cfg, args.out, resume=not args.fresh, progress=not args.quiet)
    print(f"trained model: {path}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from multiad.evaluate import evaluate

    result = evaluate(args.run, device=args.device, progress=not args.quiet,
                      max_overlays=args.max_overlays)
    print(_summary(result))
    print(f"metrics: {Path(args.run) / 'metrics.json'}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    cmd_train(args)
    args.run, args.max_overlays = args.out, 32
    args.device = args.device or "auto"
    return cmd_evaluate(args)


def cmd_predict(args: argparse.Namespace) -> int:
    from multiad.predict import predict_folder

    rows, failures = predict_folder(args.run, args.images, args.out, device=args.device,
                                    progress=not args.quiet)
    flagged = sum(r["above_train_max"] for r in rows)
    print(f"scored {len(rows)} images ({flagged} above the training maximum); "
          f"{Path(args.out) / 'scores.csv'}")
    for f in failures:
        print(f"skipped: {f['error']}", file=sys.stderr)
    if failures:
        print(f"{len(failures)} image(s) could not be read and were skipped: "
              f"{Path(args.out) / 'failures.csv'}", file=sys.stderr)
    return 1 if failures else 0  # the others were scored


def cmd_make_synthetic(args: argparse.Namespace) -> int:
    from multiad.data.synthetic import make_synthetic

    path = make_synthetic(args.category, Path(args.root), seed=args.seed, size=args.size)
    print(f"wrote synthetic '{args.category}' dataset to {path}")
    return 0


def cmd_check_data(args: argparse.Namespace) -> int:
    from multiad.data.check import check_dataset, format_report

    report = check_dataset(args.data, args.root, args.category,
                           check_image_sizes=args.sizes, progress=not args.quiet)
    print(format_report(report))
    return 0 if report.ok else 1


def cmd_upgrade_run(args: argparse.Namespace) -> int:
    from multiad.engine.run_lock import RunLock, is_run_folder
    from multiad.torch_files import upgrade_file

    top = Path(args.run)
    runs = [top] if is_run_folder(top) else sorted(
        p.parent for p in top.rglob("config.yaml") if is_run_folder(p.parent))
    if not runs:
        raise ValueError(f"{top}: neither a run folder nor a folder of run folders")
    changed = 0
    for run in runs:
        with RunLock(run, "upgrade-run"):
            for name in ("model.pt", "checkpoint.pt"):
                if (run / name).exists() and upgrade_file(run / name):
                    changed += 1
                    if not args.quiet:
                        print(f"{run / name}: rewritten as plain data")
    print(f"{len(runs)} run folder(s) checked, {changed} file(s) rewritten")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="multiad", description=__doc__, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model (Algorithm 1) into a run folder")
    _add_train_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("run", help="train, then evaluate")
    _add_train_args(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("evaluate", help="metrics JSON + anomaly maps for a trained run")
    p.add_argument("run", help="run folder")
    p.add_argument("--device", default="auto")
    p.add_argument("--max-overlays", type=int, default=32)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="score a folder of your own images with a trained run")
    p.add_argument("run", help="run folder")
    p.add_argument("images", help="folder of images (searched recursively)")
    p.add_argument("--out", required=True, help="where overlays and scores.csv go")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("make-synthetic", help="write an embedded synthetic dataset to disk")
    p.add_argument("category", choices=SYNTHETIC_CATEGORIES,
                   help="texture, medical, realtex[_brick|_grass] (MVTec AD's layout) or loco "
                        "(MVTec LOCO AD's)")
    p.add_argument("--root", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=256)
    p.set_defaults(func=cmd_make_synthetic)

    p = sub.add_parser("check-data", help="validate a dataset folder; counts vs. expected")
    p.add_argument("--data", required=True, choices=DATA_KINDS)
    p.add_argument("--root", required=True)
    p.add_argument("--category")
    p.add_argument("--sizes", action="store_true",
                   help="also decode every image and mask fully (as training does) and "
                        "compare image/mask sizes; reports truncated files (slow)")
    p.set_defaults(func=cmd_check_data)

    p = sub.add_parser("upgrade-run", help="rewrite a run folder of an earlier multiad so that "
                       "the safe loader reads it (read safely; no code is unpickled)")
    p.add_argument("run", help="a run folder, or a folder of them (e.g. results/)")
    p.set_defaults(func=cmd_upgrade_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("\ninterrupted: the last checkpoint is kept; run the same command to resume",
              file=sys.stderr)
        return 130
    except USER_ERRORS as exc:  # a user's mistake or the machine's state, not a bug
        if args.debug or not is_user_error(exc):
            raise
        print(f"multiad {args.command}: error: {user_message(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
