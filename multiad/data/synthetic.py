"""Embedded synthetic datasets, generated deterministically from a seed.

``make_synthetic("texture" | "medical" | "realtex", root, seed=...)`` writes MVTec AD's layout
(``realtex``: crops of a real photographed texture, :mod:`.synthetic_realtex`; its
variants ``realtex_brick`` and ``realtex_grass`` cut from the other two),
``root/<category>/{train/good, test/<type>, ground_truth/<type>/<stem>_mask.png}``;
``make_synthetic("loco", ...)`` MVTec LOCO AD's (``train/good``, ``validation/good``,
``test/{good,logical_anomalies,structural_anomalies}``, one region PNG per defect under
``ground_truth/<type>/<stem>/`` and ``defects_config.json``; :mod:`.synthetic_loco`); both
plus ``synthetic_manifest.json``. Generation happens in a temporary sibling folder that is renamed
into place only when complete, and the manifest is the last file written, so a folder with
a manifest is always a complete set. The same parameters give byte-identical PNGs.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

from ..atomic import write_json
from .errors import DataError
from .shapes import to_uint8, to_uint16
from .synthetic_loco import LOCO_DEFECTS, LOGICAL_DEFECTS, PIXEL_VALUES, defects_config, render_loco
from .synthetic_medical import MEDICAL_DEFECTS, render_medical
from .synthetic_realtex import REALTEX_CATEGORIES, REALTEX_DEFECTS, render_realtex
from .synthetic_texture import TEXTURE_DEFECTS, render_texture

SYNTHETIC_CATEGORIES = ("texture", "medical", "loco", *REALTEX_CATEGORIES)
MANIFEST = "synthetic_manifest.json"
GENERATOR_VERSION = 1
_DEFECTS = {"texture": TEXTURE_DEFECTS, "medical": MEDICAL_DEFECTS, "loco": LOCO_DEFECTS,
            **dict.fromkeys(REALTEX_CATEGORIES, REALTEX_DEFECTS)}
_RENDER = {"texture": render_texture, "medical": render_medical,
           **{c: partial(render_realtex, texture=t) for c, t in REALTEX_CATEGORIES.items()}}
_SPLIT_IDS = {"train": 0, "test": 1, "validation": 2}


def synthetic_params(category: str, *, seed: int = 0, size: int = 256, n_train: int = 64,
                     n_test_good: int = 16, n_test_per_defect: int = 10) -> dict:
    """The parameters that fully determine a synthetic set (stored in its manifest)."""
    if category not in SYNTHETIC_CATEGORIES:
        raise DataError(f"Unknown synthetic category '{category}'; expected one of "
                        f"{', '.join(SYNTHETIC_CATEGORIES)}.")
    if size < 32:
        raise DataError(f"Synthetic image size {size} is too small; use at least 32.")
    if min(n_train, n_test_good, n_test_per_defect) < 1:
        raise DataError("Synthetic sets need at least one image per split and defect type.")
    extra: dict = {"n_validation": max(2, n_train // 6)} if category == "loco" else {}
    if category in REALTEX_CATEGORIES:  # the photograph its normal images are cut from
        extra = {"texture": REALTEX_CATEGORIES[category]}
    return {"generator": "multiad.data.synthetic", "version": GENERATOR_VERSION,
            "category": category, "seed": int(seed), "size": int(size),
            "n_train": int(n_train), "n_test_good": int(n_test_good),
            "n_test_per_defect": int(n_test_per_defect),
            "defects": list(_DEFECTS[category]), **extra}


def read_manifest(folder: str | Path) -> dict | None:
    """The manifest of a complete synthetic set in ``folder``, or None."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"Unreadable synthetic manifest {path}: {exc}. Delete the folder "
                        f"{folder} and generate it again.") from exc


def _save_png(arr: np.ndarray, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, format="PNG", compress_level=1)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _plan(params: dict) -> list[tuple[str, str, int]]:
    """(split, type, index) for every image, in generation order."""
    items = [("train", "good", i) for i in range(params["n_train"])]
    items += [("validation", "good", i) for i in range(params.get("n_validation", 0))]
    items += [("test", "good", i) for i in range(params["n_test_good"])]
    for defect in params["defects"]:
        items += [("test", defect, i) for i in range(params["n_test_per_defect"])]
    return items


def _rng(params: dict, split: str, defect: str, index: int) -> np.random.Generator:
    """The generator of one image: it depends only on (seed, split, type, index)."""
    type_id = 0 if defect == "good" else 1 + params["defects"].index(defect)
    return np.random.default_rng([params["seed"], _SPLIT_IDS[split], type_id, index])


def _render_one(params: dict, split: str, defect: str, index: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """Render one image + mask (its randomness: :func:`_rng`)."""
    rng = _rng(params, split, defect, index)
    _, image, mask = _RENDER[params["category"]](rng, params["size"],
                                                 None if defect == "good" else defect)
    return image, mask


def _encode_image(params: dict, image: np.ndarray, index: int) -> np.ndarray:
    """Texture → 8-bit RGB; realtex → 8-bit grey; medical → single-channel, every third
    image 16-bit."""
    if params["category"] == "medical" and index % 3 == 1:
        return to_uint16(image)
    return to_uint8(image)


def _generate_into(folder: Path, params: dict) -> None:
    if params["category"] == "loco":
        return _generate_loco_into(folder, params)
    files: dict[str, str] = {}
    counts: dict[str, dict[str, int]] = {"train": {}, "test": {}}
    for split, defect, index in _plan(params):
        image, mask = _render_one(params, split, defect, index)
        rel = f"{split}/{defect}/{index:03d}.png"
        files[rel] = _save_png(_encode_image(params, image, index), folder / rel)
        counts[split][defect] = counts[split].get(defect, 0) + 1
        if defect != "good":
            mrel = f"ground_truth/{defect}/{index:03d}_mask.png"
            files[mrel] = _save_png(mask.astype(np.uint8) * 255, folder / mrel)
    write_json(folder / MANIFEST, {**params, "counts": counts, "files": files})


def _generate_loco_into(folder: Path, params: dict) -> None:
    """The LOCO-layout set: a running stem per test folder, one region PNG per defect."""
    files: dict[str, str] = {}
    # counts by the package's split names (the validation/ folder is split "valid")
    counts: dict[str, dict[str, int]] = {"train": {}, "valid": {}, "test": {}}
    for split, defect, index in _plan(params):
        key = "valid" if split == "validation" else split
        image, regions = render_loco(_rng(params, split, defect, index), params["size"], defect)
        folder_type = ("good" if defect == "good" else "logical_anomalies"
                       if defect in LOGICAL_DEFECTS else "structural_anomalies")
        stem = f"{counts[key].get(folder_type, 0):03d}"
        counts[key][folder_type] = counts[key].get(folder_type, 0) + 1
        rel = f"{split}/{folder_type}/{stem}.png"
        files[rel] = _save_png(to_uint8(image), folder / rel)
        for k, (name, mask) in enumerate(regions):
            mrel = f"ground_truth/{folder_type}/{stem}/{k:03d}.png"
            files[mrel] = _save_png(mask.astype(np.uint8) * PIXEL_VALUES[name], folder / mrel)
    write_json(folder / "defects_config.json", defects_config(params["size"]))
    write_json(folder / MANIFEST, {**params, "counts": counts, "files": files})


def _same_params(manifest: dict | None, params: dict) -> bool:
    return manifest is not None and all(manifest.get(k) == v for k, v in params.items())


def make_synthetic(category: str, root: str | Path, *, seed: int = 0, size: int = 256,
                   n_train: int = 64, n_test_good: int = 16, n_test_per_defect: int = 10
                   ) -> Path:
    """Generate (or reuse) the synthetic ``category`` set under ``root``; return its folder.

    An existing complete set with the same parameters is reused untouched; one made with
    other parameters is replaced. A folder without a manifest is never deleted.
    """
    params = synthetic_params(category, seed=seed, size=size, n_train=n_train,
                              n_test_good=n_test_good, n_test_per_defect=n_test_per_defect)
    root = Path(root).expanduser()
    target = root / category
    existing = read_manifest(target)
    if _same_params(existing, params):
        return target
    if target.exists() and existing is None and any(target.iterdir()):
        raise DataError(f"{target} exists but holds no complete synthetic set (no {MANIFEST}). "
                        "Delete it or choose another root; it is not removed automatically.")
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{category}.tmp-", dir=root))
    try:
        _generate_into(tmp, params)
        if _same_params(read_manifest(target), params):  # another process finished first
            return target
        old = None
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{category}.old-", dir=root))
            os.replace(target, old / category)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def synthetic_folder(root: str | Path, category: str) -> Path:
    """Where the ``category`` set lives: ``root/category``, or ``root`` itself if it is one."""
    root = Path(root).expanduser()
    manifest = read_manifest(root)
    if manifest is not None and manifest.get("category") == category:
        return root
    return root / category
