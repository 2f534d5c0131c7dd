"""BMAD medical sets (Brain MRI, Liver CT, Retinal OCT/RESC) in every layout in circulation.

Layouts (see docs/DATA_AND_METRICS.md): A (``<split>/<cls>/img`` + ``anomaly_mask``),
B (``train/good`` flat, masks in ``<split>/Ungood/label``), B-Liver
(``<split>/img/<cls>`` + ``<split>/label/<cls>``), B-RESC (``Train/train``,
``Val/val`` + ``Val/val_label``, ``Test/test`` + ``Test/test_label``) and D (layout A under
``Brain_AD/``, ``Liver_AD/``, ``Retina_RESC_AD/``). Masks pair with images by file stem.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path

from .errors import DataError
from .files import child_dir, describe_folder, list_images, pair_by_stem, subdirs
from .samples import AnomalyData, Sample

BMAD_KINDS = ("brain", "liver", "retina")
ALIASES: dict[str, tuple[str, ...]] = {
    "brain": ("Brain_AD", "Brain", "BraTS2021_slice", "BraTS2021", "BrainMRI", "brain_mri"),
    "liver": ("Liver_AD", "Liver", "LiverCT", "liver_ct"),
    "retina": ("Retina_RESC_AD", "Retina_RESC", "RESC"),
}
MVFA_NAMES = {"brain": "Brain_AD", "liver": "Liver_AD", "retina": "Retina_RESC_AD"}
OTHER_SETS = ("Retina_OCT2017_AD", "Retina_OCT2017", "OCT2017", "Chest_AD", "Chest",
              "Chest-RSNA", "chest-rsna", "Histopathology_AD", "Histopathology", "camelyon16",
              "camelyon16_256")
SPLIT_NAMES = {"train": ("train",), "valid": ("valid", "val"), "test": ("test",)}
CLASS_NAMES = {"good": ("good",), "Ungood": ("Ungood",)}
IMG_DIR_NAMES = ("img", "image", "images")
MASK_DIR_NAMES = ("anomaly_mask", "label", "labels", "mask", "masks")
_MAX_SCAN = 4000
_LAYOUT_HELP = ("Accepted layouts: A/D '<split>/{good,Ungood}/img' with masks in "
                "'<split>/Ungood/anomaly_mask'; B 'train/good/*.png' with masks in "
                "'<split>/Ungood/label'; B-Liver '<split>/img/{good,Ungood}' with "
                "'<split>/label/Ungood'; B-RESC 'Train/train/good', 'Test/test/{good,Ungood}', "
                "'Test/test_label/Ungood'.")


@dataclass
class _ClassDirs:
    images: Path
    masks: Path | None
    style: str  # "class/img", "img/class" or "flat"


@dataclass
class _SplitDirs:
    folder: Path
    nested: bool
    classes: dict[str, _ClassDirs]


def _has_class_dirs(folder: Path) -> bool:
    return any(child_dir(folder, *n) is not None for n in (*CLASS_NAMES.values(), IMG_DIR_NAMES))


def _unique_mask_dir(candidates: list[Path | None], images: Path) -> Path | None:
    found = [c for c in candidates if c is not None]
    if len(found) > 1:
        raise DataError(f"Several mask folders for the images in {images}: "
                        f"{', '.join(map(str, found))}. Keep only one.")
    return found[0] if found else None


def _locate_split(base: Path, split: str) -> _SplitDirs | None:
    """Find the image and mask folders of one split under a dataset folder."""
    outer = child_dir(base, *SPLIT_NAMES[split])
    if outer is None:
        return None
    inner, nested = outer, False
    if not _has_class_dirs(outer):
        sub = child_dir(outer, *SPLIT_NAMES[split])
        if sub is None or not _has_class_dirs(sub):
            return _SplitDirs(outer, False, {})
        inner, nested = sub, True
    img_level = child_dir(inner, *IMG_DIR_NAMES)
    mask_levels = [child_dir(inner, m) for m in MASK_DIR_NAMES]
    if nested:
        mask_levels.append(child_dir(outer, f"{inner.name}_label", f"{split}_label"))
    classes: dict[str, _ClassDirs] = {}
    for cls, names in CLASS_NAMES.items():
        cls_dir = child_dir(inner, *names)
        if img_level is not None and child_dir(img_level, *names) is not None:
            images, style = child_dir(img_level, *names), "img/class"
            cands = [child_dir(m, *names) for m in mask_levels if m is not None]
        elif cls_dir is not None:
            sub_img = child_dir(cls_dir, *IMG_DIR_NAMES)
            images, style = (sub_img, "class/img") if sub_img else (cls_dir, "flat")
            cands = [child_dir(cls_dir, m) for m in MASK_DIR_NAMES]
            cands += [child_dir(m, *names) for m in mask_levels if m is not None]
        else:
            continue
        assert images is not None
        classes[cls] = _ClassDirs(images, _unique_mask_dir(cands, images), style)
    return _SplitDirs(inner, nested, classes)


def looks_like_bmad(folder: Path) -> bool:
    """True when ``folder`` holds a train or test split with class folders."""
    for split in ("test", "train"):
        loc = _locate_split(folder, split)
        if loc is not None and loc.classes:
            return True
    return False


def _alias_owner(name: str) -> str | None:
    low = name.lower()
    for kind, names in ALIASES.items():
        if low in (n.lower() for n in names):
            return kind
    if low in (n.lower() for n in OTHER_SETS):
        return "other"
    return None


def find_bmad_root(root: str | Path, kind: str) -> Path:
    """Resolve the folder of one BMAD set from ``root`` (the set itself or a parent)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"BMAD root {root} does not exist. Download the {kind} set "
                        "(python -m multiad.data.download bmad) or fix the path.")
    if looks_like_bmad(root):
        owner = _alias_owner(root.name)
        if owner not in (None, kind):
            raise DataError(f"{root} looks like the '{root.name}' set, not the {kind} set. "
                            "Point root at the right folder.")
        return root
    candidates: list[tuple[int, Path]] = []
    queue: deque[tuple[Path, int]] = deque((d, 1) for d in subdirs(root))
    scanned = 0
    while queue and scanned < _MAX_SCAN:
        folder, depth = queue.popleft()
        scanned += 1
        if looks_like_bmad(folder):
            candidates.append((depth, folder))
        elif depth < 4:
            queue.extend((d, depth + 1) for d in subdirs(folder))
    def owners(p: Path) -> set[str | None]:
        return {_alias_owner(part) for part in p.relative_to(root).parts}
    mine = [(d, p) for d, p in candidates if kind in owners(p)]
    if mine:
        best = min(d for d, _ in mine)
        top = [p for d, p in mine if d == best]
        if len(top) > 1:
            raise DataError(f"Several {kind} data folders under {root}: "
                            f"{', '.join(map(str, top))}. Point root at one of them.")
        return top[0]
    generic = [p for _, p in candidates if not (owners(p) - {None})]
    if len(generic) == 1:
        return generic[0]
    found = ", ".join(str(p) for _, p in candidates) or "none"
    raise DataError(f"Could not find the BMAD {kind} set under {root} (expected a folder "
                    f"such as {', '.join(ALIASES[kind])}). Dataset folders found: {found}. "
                    f"({describe_folder(root)}) {_LAYOUT_HELP}")


def _load_split(loc: _SplitDirs, split: str) -> list[Sample]:
    samples: list[Sample] = []
    for cls, dirs in loc.classes.items():
        images = list_images(dirs.images)
        if not images:
            continue
        if cls == "good":
            if dirs.masks is not None:  # empty masks of normal images: verify pairing only
                pair_by_stem(images, dirs.masks, "_mask")
            samples.extend(Sample(p, None, 0, "good") for p in images)
            continue
        if split == "train":
            raise DataError(f"Anomalous images in the training split: {dirs.images}. Training "
                            "uses normal images only; move them out of train/.")
        if dirs.masks is None:
            raise DataError(f"No mask folder for the anomalous images in {dirs.images}: "
                            f"expected one of {', '.join(MASK_DIR_NAMES)} next to them. "
                            f"{_LAYOUT_HELP}")
        pairs = pair_by_stem(images, dirs.masks, "_mask")
        samples.extend(Sample(p, pairs[p], 1, cls) for p in images)
    return samples


def _layout_name(test: _SplitDirs, folder: Path, kind: str) -> str:
    styles = {c.style for c in test.classes.values()}
    if test.nested:
        return "B-RESC"
    if "img/class" in styles:
        return "B-Liver"
    if folder.name.lower() == MVFA_NAMES[kind].lower():
        return "D"
    ungood = test.classes.get("Ungood")
    if ungood is not None and ungood.masks is not None and ungood.masks.name == "anomaly_mask":
        return "A"
    return "B"


def load_bmad(kind: str, root: str | Path) -> AnomalyData:
    """Load the BMAD ``kind`` set (brain, liver or retina) from ``root``."""
    if kind not in BMAD_KINDS:
        raise DataError(f"Unknown BMAD set '{kind}'; expected one of {', '.join(BMAD_KINDS)}.")
    folder = find_bmad_root(root, kind)
    train_loc, valid_loc, test_loc = (_locate_split(folder, s) for s in SPLIT_NAMES)
    if train_loc is None or test_loc is None:
        missing = "train" if train_loc is None else "test"
        raise DataError(f"Missing {missing} split in {folder}. ({describe_folder(folder)}) "
                        f"{_LAYOUT_HELP}")
    train = _load_split(train_loc, "train")
    test = _load_split(test_loc, "test")
    valid = _load_split(valid_loc, "valid") if valid_loc is not None else []
    for split, loc, samples in (("train", train_loc, train), ("test", test_loc, test)):
        if not samples:
            raise DataError(f"Empty split: no images in the {split} split at {loc.folder}. "
                            f"{_LAYOUT_HELP}")
    for label, what in ((0, "normal ('good')"), (1, "anomalous ('Ungood')")):
        if not any(s.label == label for s in test):
            raise DataError(f"No {what} test images under {test_loc.folder}: image-level "
                            "AUROC needs both normal and anomalous test images.")
    notes = [] if valid_loc is not None else ["no valid split on disk"]
    return AnomalyData(name=kind, kind=kind, root=folder,
                       layout=_layout_name(test_loc, folder, kind), train=train, test=test,
                       valid=valid, category=None, has_masks=True, notes=notes)
