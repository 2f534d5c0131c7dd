"""MVTec AD and any folder in the MVTec layout (``train/good``, ``test/<type>``, masks)."""

from __future__ import annotations

from pathlib import Path

from .errors import DataError
from .files import child_dir, describe_folder, format_paths, list_images, pair_by_stem, subdirs
from .samples import AnomalyData, Sample

MVTEC_CATEGORIES = ("carpet", "grid", "leather", "tile", "wood", "bottle", "cable", "capsule",
                    "hazelnut", "metal_nut", "pill", "screw", "toothbrush", "transistor",
                    "zipper")
MASK_SUFFIX = "_mask"
_LAYOUT_HELP = ("Expected the MVTec layout: train/good/*.png, test/good/*.png, "
                "test/<defect>/*.png and ground_truth/<defect>/<stem>_mask.png.")


def is_mvtec_folder(folder: Path) -> bool:
    """True when ``folder`` has ``train/`` and ``test/`` sub-folders."""
    return (folder / "train").is_dir() and (folder / "test").is_dir()


def _load_train(folder: Path) -> list[Sample]:
    train_dir = folder / "train"
    if not train_dir.is_dir():
        raise DataError(f"No train/ folder in {folder}. {_LAYOUT_HELP} "
                        f"({describe_folder(folder)})")
    extra = [p for p in subdirs(train_dir) if p.name != "good"]
    if extra:
        raise DataError(f"Unexpected folder {extra[0]}: training data must be normal images "
                        f"only, in {train_dir / 'good'}. Move or remove it.")
    images = list_images(train_dir / "good")
    if not images:
        raise DataError(f"Empty split: no training images in {train_dir / 'good'}. "
                        f"{_LAYOUT_HELP}")
    return [Sample(p, None, 0, "good") for p in images]


def _load_test(folder: Path, gt_dir: Path | None, notes: list[str]) -> list[Sample]:
    test_dir = folder / "test"
    if not test_dir.is_dir():
        raise DataError(f"No test/ folder in {folder}. {_LAYOUT_HELP}")
    samples: list[Sample] = []
    defect_dirs = subdirs(test_dir)
    names = {d.name for d in defect_dirs}
    for ddir in sorted(defect_dirs, key=lambda d: (d.name != "good", d.name)):
        images = list_images(ddir)
        if not images:
            notes.append(f"empty folder {ddir} ignored")
            continue
        mask_dir = gt_dir / ddir.name if gt_dir is not None else None
        if ddir.name == "good":
            if mask_dir is not None and mask_dir.is_dir():  # optional empty masks: just verify
                pair_by_stem(images, mask_dir, MASK_SUFFIX, strict_suffix=True)
            samples.extend(Sample(p, None, 0, "good") for p in images)
            continue
        if mask_dir is None:
            samples.extend(Sample(p, None, 1, ddir.name) for p in images)
            continue
        if not mask_dir.is_dir():
            raise DataError(f"No masks for the defect images in {ddir}: expected the folder "
                            f"{mask_dir} with one '<stem>_mask.png' per image. Restore it "
                            "(re-extract the dataset).")
        pairs = pair_by_stem(images, mask_dir, MASK_SUFFIX, strict_suffix=True)
        samples.extend(Sample(p, pairs[p], 1, ddir.name) for p in images)
    if gt_dir is not None:
        orphan_dirs = [d for d in subdirs(gt_dir) if d.name not in names]
        for odir in orphan_dirs:
            masks = list_images(odir)
            if masks:
                raise DataError(f"Mask without image: {format_paths(masks, 1)} is in {odir} but "
                                f"there is no test/{odir.name}/ folder. Restore the images or "
                                "remove the stray masks.")
    if not samples:
        raise DataError(f"Empty split: no test images under {test_dir}. {_LAYOUT_HELP}")
    if not any(s.label == 0 for s in samples):
        raise DataError(f"No normal test images in {test_dir / 'good'}: image-level AUROC "
                        "needs both normal and anomalous test images.")
    if not any(s.label == 1 for s in samples):
        raise DataError(f"No anomalous test images under {test_dir} (only good/): image-level "
                        "AUROC needs both normal and anomalous test images.")
    return samples


def load_mvtec_layout(folder: Path, *, name: str, kind: str, category: str | None,
                      require_masks: bool) -> AnomalyData:
    """Load one folder in MVTec layout.

    Without ``ground_truth/`` and with ``require_masks=False`` the anomalous test images get
    no masks and ``has_masks`` is False.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"Dataset folder {folder} does not exist.")
    gt_dir = child_dir(folder, "ground_truth")
    if gt_dir is None and require_masks:
        raise DataError(f"No ground_truth/ folder in {folder}: pixel masks are required. "
                        f"{_LAYOUT_HELP}")
    notes: list[str] = []
    train = _load_train(folder)
    test = _load_test(folder, gt_dir, notes)
    if gt_dir is None:
        notes.append("no ground_truth/ folder: anomalous test images have no masks, "
                     "pixel-level metrics are skipped")
    return AnomalyData(name=name, kind=kind, root=folder, layout="mvtec", train=train,
                       test=test, valid=[], category=category, has_masks=gt_dir is not None,
                       notes=notes)


def resolve_mvtec_folder(root: str | Path, category: str | None) -> tuple[Path, str]:
    """Find the category folder under an MVTec AD root (or accept the folder itself)."""
    root = Path(root).expanduser()
    valid = ", ".join(MVTEC_CATEGORIES)
    if not root.is_dir():
        raise DataError(f"MVTec AD root {root} does not exist. Download the dataset "
                        "(python -m multiad.data.download mvtec --root <folder>) or fix the path.")
    if category is None:
        if is_mvtec_folder(root) and root.name in MVTEC_CATEGORIES:
            return root, root.name
        if is_mvtec_folder(root):
            raise DataError(f"{root} is in MVTec layout but '{root.name}' is not an MVTec AD "
                            "category; load it with kind='folder'.")
        raise DataError(f"No MVTec AD category given. Choose one of: {valid}. "
                        f"({describe_folder(root)})")
    if category not in MVTEC_CATEGORIES:
        raise DataError(f"Unknown MVTec AD category '{category}'. Valid categories: {valid}. "
                        f"({describe_folder(root)})")
    for cand in (root / category, root / "mvtec_anomaly_detection" / category,
                 root / "mvtec_ad" / category, root / "mvtec" / category):
        if cand.is_dir():
            return cand, category
    if is_mvtec_folder(root):
        if root.name == category:
            return root, category
        raise DataError(f"{root} looks like the single category folder '{root.name}', not "
                        f"'{category}'. Point root at the MVTec AD root folder.")
    raise DataError(f"MVTec AD category folder {root / category} not found. "
                    f"({describe_folder(root)}). Valid categories: {valid}.")


def load_mvtec(root: str | Path, category: str | None = None) -> AnomalyData:
    """Load one MVTec AD category (``root`` is the MVTec root or the category folder)."""
    folder, category = resolve_mvtec_folder(root, category)
    return load_mvtec_layout(folder, name=f"mvtec/{category}", kind="mvtec",
                             category=category, require_masks=True)


def load_folder(root: str | Path, category: str | None = None) -> AnomalyData:
    """Load a user folder in MVTec layout (``root/category`` when ``category`` is given)."""
    root = Path(root).expanduser()
    folder = root / category if category else root
    if not is_mvtec_folder(folder):
        raise DataError(f"{folder} is not in MVTec layout (needs train/ and test/). "
                        f"{_LAYOUT_HELP} ({describe_folder(folder)})")
    return load_mvtec_layout(folder, name=f"folder/{category or folder.name}", kind="folder",
                             category=category, require_masks=False)
