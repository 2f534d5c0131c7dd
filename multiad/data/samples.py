"""What a loaded dataset is: lists of (image, mask, label, defect) samples per split."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Sample:
    """One image. ``mask`` is None for an empty mask (normal images, or no masks shipped).

    ``regions``: when the ground truth is split over several files, one per annotated
    defect (MVTec LOCO AD), all of them; the image's mask is then their union and
    ``mask`` is the first of them.
    """

    image: Path
    mask: Path | None
    label: int  # 0 normal, 1 anomalous
    defect: str  # "good" for normal images
    regions: tuple[Path, ...] = ()


@dataclass
class AnomalyData:
    """A dataset resolved on disk: its splits and how it was found.

    ``has_masks`` is False when anomalous test images come without pixel masks (a user
    folder without ``ground_truth/``): pixel-level metrics must then be skipped.
    """

    name: str
    kind: str
    root: Path
    layout: str
    train: list[Sample]
    test: list[Sample]
    valid: list[Sample] = field(default_factory=list)
    category: str | None = None
    has_masks: bool = True
    notes: list[str] = field(default_factory=list)

    def split(self, name: str) -> list[Sample]:
        """The samples of split ``name`` (train, valid or test)."""
        if name not in SPLITS:
            raise KeyError(f"unknown split {name!r}; expected one of {SPLITS}")
        return getattr(self, name)

    def counts(self) -> dict[str, dict]:
        """Per split: ``normal``, ``anomalous``, ``total`` and per-``defects`` counts."""
        out: dict[str, dict] = {}
        for name in SPLITS:
            samples = self.split(name)
            defects = Counter(s.defect for s in samples)
            anomalous = sum(1 for s in samples if s.label == 1)
            out[name] = {"normal": len(samples) - anomalous, "anomalous": anomalous,
                         "total": len(samples), "defects": dict(sorted(defects.items()))}
        return out

    def summary(self) -> str:
        """One line per split, e.g. ``test: 20 normal, 63 anomalous``."""
        lines = [f"{self.name} ({self.kind}, layout {self.layout}) at {self.root}"]
        for name, c in self.counts().items():
            if c["total"]:
                lines.append(f"  {name}: {c['normal']} normal, {c['anomalous']} anomalous")
        return "\n".join(lines)
