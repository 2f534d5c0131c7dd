"""Check a dataset on disk against the expected split sizes (the ``check-data`` command)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from .errors import DataError
from .expected import NOTES, Expected, expected_counts
from .image_io import decoded_size, image_size
from .registry import KINDS, canonical_kind, load_dataset
from .samples import SPLITS, AnomalyData
from .synthetic import SYNTHETIC_CATEGORIES, read_manifest, synthetic_folder


@dataclass
class Difference:
    """One count that differs from its expected value."""

    split: str
    what: str  # "normal", "anomalous" or "defect:<type>"
    found: int
    expected: str
    source: str


@dataclass
class CheckReport:
    """Result of :func:`check_dataset`; ``ok`` means no differences and no problems."""

    kind: str
    root: str
    category: str | None
    layout: str | None = None
    resolved_root: str | None = None
    counts: dict = field(default_factory=dict)
    expected: dict = field(default_factory=dict)
    differences: list[Difference] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    ok: bool = False

    def to_dict(self) -> dict:
        """JSON-serialisable form."""
        return asdict(self)


def _rows(expected: dict) -> list[tuple[str, str, Expected]]:
    rows: list[tuple[str, str, Expected]] = []
    for split in SPLITS:
        exp = expected.get(split, {})
        for key in ("normal", "anomalous"):
            if isinstance(exp.get(key), Expected):
                rows.append((split, key, exp[key]))
        for dtype, value in sorted(exp.get("defects", {}).items()):
            rows.append((split, f"defect:{dtype}", value))
    return rows


def _found(counts: dict, split: str, what: str) -> int:
    c = counts.get(split, {})
    if what.startswith("defect:"):
        return int(c.get("defects", {}).get(what[len("defect:"):], 0))
    return int(c.get(what, 0))


def size_mismatches(data: AnomalyData, *, decode: bool = False,
                    progress: bool = False) -> list[str]:
    """Every mask whose size differs from its image's, as messages naming both files.

    ``decode``: open and fully decode every image and mask of every split (masked or not),
    so that a truncated or corrupt file is reported here rather than in training; else
    only the headers of masked pairs are read.
    """
    problems = []
    samples = [s for split in SPLITS for s in data.split(split)]
    if not decode:
        samples = [s for s in samples if s.mask is not None]
    size_of = decoded_size if decode else image_size
    for s in tqdm(samples, desc="decoding images", disable=not progress, leave=False):
        try:
            isize = size_of(s.image)
            if s.mask is None:
                continue
            msize = size_of(s.mask)
        except DataError as exc:
            problems.append(str(exc))
            continue
        if isize != msize:
            problems.append(f"Mask {s.mask} is {msize[0]}x{msize[1]} but its image "
                            f"{s.image} is {isize[0]}x{isize[1]} (width x height).")
    return problems


def check_mask_sizes(data: AnomalyData) -> None:
    """Raise :class:`DataError` naming both files when any mask and image sizes differ."""
    problems = size_mismatches(data)
    if problems:
        more = f" ({len(problems) - 1} more mismatches)" if len(problems) > 1 else ""
        raise DataError(problems[0] + more + " Fix or remove the mismatched pairs.")


def check_dataset(kind: str, root: str | Path, category: str | None = None, *,
                  check_image_sizes: bool = False, progress: bool = False) -> CheckReport:
    """Load a dataset, count it, compare with the expected counts and collect problems.

    Never raises for a bad dataset: loader errors become ``problems``. With
    ``check_image_sizes`` every image and mask is opened and fully decoded, and size
    mismatches and unreadable (e.g. truncated) files are reported.
    """
    kind = canonical_kind(kind)
    report = CheckReport(kind=kind, root=str(root), category=category)
    report.notes.extend(NOTES.get(kind, []))
    if kind == "synthetic" and category in SYNTHETIC_CATEGORIES and read_manifest(
            synthetic_folder(root, category)) is None:
        report.problems.append(f"No synthetic '{category}' set under {root}; generate it with "
                               "make_synthetic (the check does not create data).")
        return report
    try:
        data = load_dataset(kind, root, category)
    except DataError as exc:
        report.problems.append(str(exc))
        return report
    report.layout, report.resolved_root = data.layout, str(data.root)
    report.counts = data.counts()
    report.notes.extend(data.notes)
    expected = expected_counts(kind, data.category, data.root)
    report.expected = {f"{split}/{what}": str(exp) for split, what, exp in _rows(expected)}
    for split, what, exp in _rows(expected):
        n = _found(report.counts, split, what)
        if not exp.contains(n):
            report.differences.append(Difference(split, what, n, str(exp), exp.source))
    for split in SPLITS:  # defect types on disk that the release does not have
        known = expected.get(split, {}).get("defects")
        if split == "train" or not known:
            continue
        for dtype, n in report.counts[split]["defects"].items():
            if dtype not in known:
                report.differences.append(Difference(split, f"defect:{dtype}", n, "0",
                                                      "not in the official release"))
    if not expected:
        report.notes.append("no expected counts known for this dataset; counts not checked")
    if check_image_sizes:
        report.problems.extend(size_mismatches(data, decode=True, progress=progress))
    report.ok = not report.differences and not report.problems
    return report


def _table_rows(report: CheckReport) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for split in SPLITS:
        counts = report.counts.get(split, {})
        has_exp = any(k.startswith(f"{split}/") for k in report.expected)
        if not counts.get("total") and not has_exp:
            continue
        rows += [(split, "normal"), (split, "anomalous")]
        if split == "train":
            continue
        expected_types = {k.split("defect:", 1)[1] for k in report.expected
                          if k.startswith(f"{split}/defect:")}
        types = expected_types | set(counts.get("defects", {}))
        if not expected_types and len(types - {"good"}) <= 1:
            continue  # one anomaly class (BMAD's 'Ungood'): the rows above say it all
        rows += [(split, f"defect:{t}") for t in sorted(types, key=lambda t: (t != "good", t))]
    return rows


def format_report(report: CheckReport) -> str:
    """A plain-text table of found vs expected counts, then problems and notes."""
    name = report.kind + (f"/{report.category}" if report.category else "")
    lines = [f"Dataset {name} at {report.resolved_root or report.root}"
             + (f" (layout {report.layout})" if report.layout else "")]
    if report.counts:
        bad = {(d.split, d.what) for d in report.differences}
        lines.append(f"{'split':<6} {'count':<30} {'found':>8} {'expected':>13}  status")
        for split, what in _table_rows(report):
            found = _found(report.counts, split, what)
            exp = report.expected.get(f"{split}/{what}", "-")
            status = "DIFF" if (split, what) in bad else ("ok" if exp != "-" else "")
            lines.append(f"{split:<6} {what:<30} {found:>8,} {exp:>13}  {status}")
    if report.problems:
        lines.append("Problems:")
        lines.extend(f"  - {p}" for p in report.problems)
    if report.notes:
        lines.append("Notes:")
        lines.extend(f"  - {n}" for n in report.notes)
    verdict = "OK" if report.ok else (
        f"NOT OK: {len(report.differences)} count difference(s), "
        f"{len(report.problems)} problem(s)")
    lines.append(f"Result: {verdict}")
    return "\n".join(lines)


def add_check_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of the ``check-data`` command."""
    parser.add_argument("--kind", required=True, help=f"one of {', '.join(KINDS)}")
    parser.add_argument("--root", required=True, help="dataset root folder")
    parser.add_argument("--category", default=None,
                        help="MVTec AD category, or texture/medical/loco/realtex for synthetic")
    parser.add_argument("--check-image-sizes", action="store_true",
                        help="decode every image and mask fully; report unreadable files "
                             "and size mismatches")
    parser.add_argument("--json", default=None, help="also write the report as JSON here")


def run_check(args: argparse.Namespace) -> int:
    """Run ``check-data``: print the table; exit code 0 when OK, 1 otherwise."""
    try:
        report = check_dataset(args.kind, args.root, args.category,
                               check_image_sizes=args.check_image_sizes)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_report(report))
    if args.json:
        from ..atomic import write_json

        write_json(args.json, report.to_dict())
    return 0 if report.ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m multiad.data.check --kind brain --root data/bmad``."""
    parser = argparse.ArgumentParser(prog="multiad-check-data", description=__doc__)
    add_check_arguments(parser)
    return run_check(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
