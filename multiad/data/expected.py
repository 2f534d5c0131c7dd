"""Expected split sizes of the official releases, to check a copy on disk against.

MVTec AD: the official release (5,354 images: 3,629 train, 1,725 test). MVTec LOCO AD: its
release (3,644 images: 1,772 train, 304 validation, 1,568 test). BMAD: counts from
BMAD's own scripts (docs/DATA_AND_METRICS.md); where sources disagree a range is given or
the count is left open.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .synthetic import read_manifest, synthetic_folder


@dataclass(frozen=True)
class Expected:
    """An expected count, exact (``lo == hi``) or a range, with where it comes from."""

    lo: int
    hi: int
    source: str = ""

    def contains(self, n: int) -> bool:
        """True when ``n`` lies in [lo, hi]."""
        return self.lo <= n <= self.hi

    def __str__(self) -> str:
        return f"{self.lo:,}" if self.lo == self.hi else f"{self.lo:,}-{self.hi:,}"


def _exact(n: int, source: str) -> Expected:
    return Expected(n, n, source)


# category: (train good, {test type: count}) -- official MVTec AD release
MVTEC_COUNTS: dict[str, tuple[int, dict[str, int]]] = {
    "bottle": (209, {"good": 20, "broken_large": 20, "broken_small": 22, "contamination": 21}),
    "cable": (224, {"good": 58, "bent_wire": 13, "cable_swap": 12, "combined": 11,
                    "cut_inner_insulation": 14, "cut_outer_insulation": 10,
                    "missing_cable": 12, "missing_wire": 10, "poke_insulation": 10}),
    "capsule": (219, {"good": 23, "crack": 23, "faulty_imprint": 22, "poke": 21,
                      "scratch": 23, "squeeze": 20}),
    "carpet": (280, {"good": 28, "color": 19, "cut": 17, "hole": 17,
                     "metal_contamination": 17, "thread": 19}),
    "grid": (264, {"good": 21, "bent": 12, "broken": 12, "glue": 11,
                   "metal_contamination": 11, "thread": 11}),
    "hazelnut": (391, {"good": 40, "crack": 18, "cut": 17, "hole": 18, "print": 17}),
    "leather": (245, {"good": 32, "color": 19, "cut": 19, "fold": 17, "glue": 19, "poke": 18}),
    "metal_nut": (220, {"good": 22, "bent": 25, "color": 22, "flip": 23, "scratch": 23}),
    "pill": (267, {"good": 26, "color": 25, "combined": 17, "contamination": 21, "crack": 26,
                   "faulty_imprint": 19, "pill_type": 9, "scratch": 24}),
    "screw": (320, {"good": 41, "manipulated_front": 24, "scratch_head": 24,
                    "scratch_neck": 25, "thread_side": 23, "thread_top": 23}),
    "tile": (230, {"good": 33, "crack": 17, "glue_strip": 18, "gray_stroke": 16, "oil": 18,
                   "rough": 15}),
    "toothbrush": (60, {"good": 12, "defective": 30}),
    "transistor": (213, {"good": 60, "bent_lead": 10, "cut_lead": 10, "damaged_case": 10,
                         "misplaced": 10}),
    "wood": (247, {"good": 19, "color": 8, "combined": 11, "hole": 10, "liquid": 10,
                   "scratch": 21}),
    "zipper": (240, {"good": 32, "broken_teeth": 19, "combined": 16, "fabric_border": 17,
                     "fabric_interior": 16, "rough": 17, "split_teeth": 18,
                     "squeezed_teeth": 16}),
}

# category: (train good, validation good, {test type: count}) -- MVTec LOCO AD release, as
# its paper's dataset table gives them; their sums (1,772 train, 304 validation, 1,568
# test) match a second public summary of the release, the per-type split was not
# cross-checked here
LOCO_COUNTS: dict[str, tuple[int, int, dict[str, int]]] = {
    "breakfast_box": (351, 62, {"good": 102, "logical_anomalies": 83,
                                "structural_anomalies": 90}),
    "juice_bottle": (335, 54, {"good": 94, "logical_anomalies": 142,
                               "structural_anomalies": 94}),
    "pushpins": (372, 69, {"good": 138, "logical_anomalies": 91, "structural_anomalies": 81}),
    "screw_bag": (360, 60, {"good": 122, "logical_anomalies": 137,
                            "structural_anomalies": 82}),
    "splicing_connectors": (354, 59, {"good": 119, "logical_anomalies": 108,
                                      "structural_anomalies": 85}),
}

_BMAD = "BMAD scripts"
BMAD_COUNTS: dict[str, dict[str, dict[str, Expected]]] = {
    "brain": {
        "train": {"normal": _exact(7500, _BMAD), "anomalous": _exact(0, _BMAD)},
        "valid": {"normal": _exact(39, _BMAD), "anomalous": _exact(44, _BMAD)},
        "test": {"normal": _exact(640, _BMAD), "anomalous": _exact(3075, _BMAD)},
    },
    "liver": {
        "train": {"normal": Expected(1452, 1542, "BMAD scripts 1,452; paper 1,542"),
                  "anomalous": _exact(0, _BMAD)},
        "test": {"normal": _exact(833, _BMAD), "anomalous": _exact(660, _BMAD)},
    },
    "retina": {
        "train": {"normal": _exact(4297, _BMAD), "anomalous": _exact(0, _BMAD)},
    },
}

NOTES = {
    "liver": ["Liver: the normal training slices (BTCV) and the test slices (LiTS) were "
              "windowed differently by BMAD's preprocessing, a real domain shift."],
    "retina": ["RESC: BMAD's comments disagree on the valid/test split sizes (e.g. test "
               "1,805 = 1,041 normal + 764 anomalous in one script); they are not checked."],
}


def expected_counts(kind: str, category: str | None = None,
                    root: str | Path | None = None) -> dict[str, dict[str, object]]:
    """Expected counts per split: ``{split: {"normal"|"anomalous": Expected,
    "defects": {type: Expected}}}``; empty when nothing is known (user folders)."""
    if kind == "mvtec" and category in MVTEC_COUNTS:
        train, test = MVTEC_COUNTS[category]
        out = _release("MVTec AD release", train, test)
        out["train"]["defects"] = {"good": _exact(train, "MVTec AD release")}
        return out
    if kind == "mvtec_loco" and category in LOCO_COUNTS:
        train, valid, test = LOCO_COUNTS[category]
        return _release("MVTec LOCO AD release", train, test, valid)
    if kind in BMAD_COUNTS:
        return {split: dict(v) for split, v in BMAD_COUNTS[kind].items()}
    if kind == "synthetic" and root is not None and category is not None:
        return _synthetic_expected(synthetic_folder(root, category))
    return {}


def _release(src: str, train: int, test: dict[str, int], valid: int | None = None
             ) -> dict[str, dict[str, object]]:
    """Expected counts of an official release: normal-only train (and validation) splits,
    a test split per folder."""
    normal_only = {"train": train, **({"valid": valid} if valid is not None else {})}
    out: dict[str, dict[str, object]] = {
        split: {"normal": _exact(n, src), "anomalous": _exact(0, src)}
        for split, n in normal_only.items()}
    out["test"] = {"normal": _exact(test["good"], src),
                   "anomalous": _exact(sum(v for k, v in test.items() if k != "good"), src),
                   "defects": {k: _exact(v, src) for k, v in test.items()}}
    return out


def _synthetic_expected(folder: Path) -> dict[str, dict[str, object]]:
    manifest = read_manifest(folder)
    if manifest is None:
        return {}
    src = "synthetic manifest"
    out: dict[str, dict[str, object]] = {}
    for split, types in manifest.get("counts", {}).items():
        normal = types.get("good", 0)
        out[split] = {"normal": _exact(normal, src),
                      "anomalous": _exact(sum(types.values()) - normal, src),
                      "defects": {k: _exact(v, src) for k, v in types.items()}}
    return out
