"""Tiny on-disk datasets in every supported layout, for tests (here and in other packages)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from .bmad import MVFA_NAMES

BMAD_LAYOUTS = ("A", "B", "B-Liver", "B-RESC", "D")


def write_png(path: str | Path, arr: np.ndarray) -> Path:
    """Write ``arr`` (uint8/uint16, H×W or H×W×C) as a PNG, creating folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def _image(rng: np.random.Generator, size: int) -> np.ndarray:
    return rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)


def _mask(rng: np.random.Generator, size: int, levels: tuple[int, ...]) -> np.ndarray:
    mask = np.zeros((size, size), dtype=np.uint8)
    y, x = rng.integers(0, size - 4, 2)
    mask[y:y + 4, x:x + 4] = rng.choice(levels, size=(4, 4))
    mask[y, x] = levels[-1]
    return mask


def make_mvtec_tree(root: str | Path, category: str = "bottle", *, n_train: int = 3,
                    n_good: int = 2, defects: dict[str, int] | None = None, size: int = 16,
                    masks: bool = True, seed: int = 0) -> Path:
    """Write ``root/category`` in MVTec layout; return the category folder."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / category
    defects = {"crack": 2, "scratch": 1} if defects is None else defects
    for i in range(n_train):
        write_png(folder / "train" / "good" / f"{i:03d}.png", _image(rng, size))
    for i in range(n_good):
        write_png(folder / "test" / "good" / f"{i:03d}.png", _image(rng, size))
    for defect, n in defects.items():
        for i in range(n):
            write_png(folder / "test" / defect / f"{i:03d}.png", _image(rng, size))
            if masks:
                write_png(folder / "ground_truth" / defect / f"{i:03d}_mask.png",
                          _mask(rng, size, (255,)))
    return folder


def _bmad_paths(base: Path, layout: str, split: str, cls: str) -> tuple[Path, Path | None]:
    """(image folder, mask folder or None) of one split/class in ``layout``."""
    if layout == "B-RESC":
        outer = {"train": "Train", "valid": "Val", "test": "Test"}[split]
        inner = {"train": "train", "valid": "val", "test": "test"}[split]
        masks = base / outer / f"{inner}_label" / cls if cls == "Ungood" else None
        return base / outer / inner / cls, masks
    if split == "train":
        flat = layout in ("B", "B-Liver")
        return (base / "train" / "good") if flat else (base / "train" / "good" / "img"), None
    if layout == "B-Liver":
        return base / split / "img" / cls, base / split / "label" / cls
    if layout == "B":
        return base / split / cls / "img", base / split / cls / "label"
    return base / split / cls / "img", base / split / cls / "anomaly_mask"  # A and D


def make_bmad_tree(root: str | Path, layout: str, kind: str = "brain", *, n_train: int = 4,
                   valid: tuple[int, int] | None = (1, 2), test: tuple[int, int] = (2, 3),
                   size: int = 16, mask_levels: tuple[int, ...] = (1, 2, 4),
                   good_masks: bool = False, seed: int = 0) -> Path:
    """Write a tiny BMAD ``kind`` set in ``layout``; return the folder to pass as root.

    ``valid``/``test`` are (normal, anomalous) counts. Masks hold ``mask_levels`` (default
    the multi-level BraTS labels 1/2/4). Images are RGBA PNGs, as BMAD's brain slices.
    """
    if layout not in BMAD_LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; expected {BMAD_LAYOUTS}")
    rng = np.random.default_rng(seed)
    root = Path(root)
    base = root / MVFA_NAMES[kind] if layout == "D" else root
    counts = {"train": (n_train, 0), "test": test}
    if valid is not None:
        counts["valid"] = valid
    for split, (n_good, n_bad) in counts.items():
        for cls, n in (("good", n_good), ("Ungood", n_bad)):
            img_dir, mask_dir = _bmad_paths(base, layout, split, cls)
            for i in range(n):
                stem = f"{split[:2]}{cls[0]}_{i:04d}"
                rgba = np.concatenate([_image(rng, size),
                                       np.full((size, size, 1), 255, np.uint8)], axis=2)
                write_png(img_dir / f"{stem}.png", rgba)
                if cls == "Ungood" and mask_dir is not None:
                    write_png(mask_dir / f"{stem}.png", _mask(rng, size, mask_levels))
                elif good_masks and mask_dir is not None:  # empty masks of normal images
                    write_png(mask_dir / f"{stem}.png", np.zeros((size, size), np.uint8))
    return root
