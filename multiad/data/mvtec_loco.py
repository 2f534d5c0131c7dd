"""MVTec LOCO AD: logical and structural anomalies, one mask file per defect region.

Official layout per category (Bergmann et al., IJCV 2022; MVTec's evaluation script)::

    <category>/train/good/*.png
    <category>/validation/good/*.png
    <category>/test/{good,logical_anomalies,structural_anomalies}/*.png
    <category>/ground_truth/{logical_anomalies,structural_anomalies}/<stem>/000.png, 001.png …
    <category>/defects_config.json

Each ground-truth PNG is one annotated defect (a *region* for sPRO, whatever its
connectivity): its non-zero pixels all hold the pixel value of the defect type, whose
saturation threshold ``defects_config.json`` gives. Test samples carry their test folder
as defect type (so results split into logical vs structural), their binary mask is the
union of their region masks (:attr:`Sample.regions`; pixel AUROC and AUPRO use it), and
:class:`LocoData` keeps the loaded defects config for sPRO (:func:`loco_auspro`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from . import image_io
from .errors import DataError
from .files import describe_folder, format_paths, list_images, subdirs
from .samples import AnomalyData, Sample

LOCO_CATEGORIES = ("breakfast_box", "juice_bottle", "pushpins", "screw_bag",
                   "splicing_connectors")
LOCO_ANOMALY_TYPES = ("logical_anomalies", "structural_anomalies")
LOCO_TEST_TYPES = ("good", *LOCO_ANOMALY_TYPES)
DEFECTS_CONFIG = "defects_config.json"
_CONFIG_FIELDS = ("defect_name", "pixel_value", "saturation_threshold", "relative_saturation")
_LAYOUT_HELP = ("Expected the MVTec LOCO AD layout: train/good/, validation/good/, "
                "test/{good,logical_anomalies,structural_anomalies}/, "
                "ground_truth/<type>/<image stem>/000.png … and defects_config.json.")
_REEXTRACT = "Restore it from the dataset archive (re-extract mvtec_loco_anomaly_detection)."


@dataclass(frozen=True)
class LocoDefect:
    """One entry of ``defects_config.json``.

    ``relative_saturation``: the threshold is a fraction of the region's area; else a
    pixel count at the original image resolution.
    """

    defect_name: str
    pixel_value: int
    saturation_threshold: float
    relative_saturation: bool

    def saturation_area(self, region_area: int, area_scale: float = 1.0) -> float:
        """Saturation area in pixels of a region of ``region_area`` evaluated pixels
        (``area_scale``: evaluated / original pixel count; see
        :func:`multiad.metrics.spro.saturation_area`)."""
        from ..metrics.spro import saturation_area

        return saturation_area(self.saturation_threshold, self.relative_saturation,
                               region_area, area_scale)


@dataclass
class LocoData(AnomalyData):
    """An MVTec LOCO AD category: the splits plus its defects config (pixel value → type)."""

    defects: dict[int, LocoDefect] = field(default_factory=dict)
    defects_path: Path | None = None


def _config_error(path: Path, what: str) -> DataError:
    return DataError(f"Malformed {path}: {what}. Each entry must be an object with "
                     f"{', '.join(_CONFIG_FIELDS)}. {_REEXTRACT}")


def _parse_entry(path: Path, i: int, entry: Any) -> LocoDefect:
    if not isinstance(entry, dict) or any(k not in entry for k in _CONFIG_FIELDS):
        missing = ([k for k in _CONFIG_FIELDS if k not in entry] if isinstance(entry, dict)
                   else list(_CONFIG_FIELDS))
        raise _config_error(path, f"entry {i} lacks {', '.join(missing)}")
    name, value = entry["defect_name"], entry["pixel_value"]
    thr, rel = entry["saturation_threshold"], entry["relative_saturation"]
    if not isinstance(name, str) or not name:
        raise _config_error(path, f"entry {i}: defect_name must be a non-empty string")
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 255:
        raise _config_error(path, f"entry {i} ({name}): pixel_value must be an integer in "
                                  f"1..255, got {value!r}")
    if not isinstance(rel, bool):
        raise _config_error(path, f"entry {i} ({name}): relative_saturation must be true or "
                                  f"false, got {rel!r}")
    ok = (not isinstance(thr, bool) and isinstance(thr, int | float) and math.isfinite(thr)
          and thr > 0 and (thr <= 1 or not rel))
    if not ok:
        rule = "a fraction in (0, 1]" if rel else "a positive pixel count"
        raise _config_error(path, f"entry {i} ({name}): saturation_threshold must be {rule}, "
                                  f"got {thr!r}")
    return LocoDefect(name, value, float(thr), rel)


def read_defects_config(path: str | Path) -> dict[int, LocoDefect]:
    """Read and check a ``defects_config.json``; returns pixel value → :class:`LocoDefect`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"Missing {path}: MVTec LOCO AD ships one defects_config.json per "
                        "category (defect types, pixel values, sPRO saturation thresholds). "
                        f"{_REEXTRACT}")
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"Cannot read {path}: {exc}. {_REEXTRACT}") from exc
    if not isinstance(entries, list) or not entries:
        raise _config_error(path, "expected a non-empty JSON list")
    defects: dict[int, LocoDefect] = {}
    for i, entry in enumerate(entries):
        d = _parse_entry(path, i, entry)
        if d.pixel_value in defects:
            raise _config_error(path, f"pixel_value {d.pixel_value} is used by both "
                                      f"'{defects[d.pixel_value].defect_name}' and "
                                      f"'{d.defect_name}'")
        defects[d.pixel_value] = d
    return defects


def _pixel_values(path: Path) -> np.ndarray:
    """The stored (integer) values of a single-channel mask PNG, H×W."""
    img = image_io._open_loaded(path)
    arr = np.asarray(img.convert("L") if img.mode == "1" else img)
    if arr.ndim == 3:
        if img.mode in ("RGBA", "LA"):
            arr = arr[..., :-1]
        if arr.shape[2] > 1 and (arr != arr[..., :1]).any():
            raise DataError(f"Mask {path} is a colour image; MVTec LOCO masks are grey PNGs "
                            "whose non-zero pixels hold the defect's pixel value. Restore it "
                            "from the dataset archive.")
        arr = arr[..., 0]
    return arr


def read_region(path: str | Path, defects: dict[int, LocoDefect]
                ) -> tuple[np.ndarray, LocoDefect]:
    """One region mask file: (bool H×W mask, its defect type), checked like the official
    script (exactly one non-zero value, listed in ``defects_config.json``)."""
    path = Path(path)
    arr = _pixel_values(path)
    nonzero = arr[arr != 0]
    if nonzero.size == 0:
        raise DataError(f"Mask {path} is empty (no non-zero pixel): every ground-truth PNG of "
                        "MVTec LOCO AD marks one defect. Restore it or remove the file.")
    value = int(nonzero.max())
    if (nonzero != value).any():
        found = sorted(int(v) for v in np.unique(nonzero))
        raise DataError(f"Mask {path} holds several defect values {found[:8]}; each MVTec "
                        "LOCO mask file holds one defect (one pixel value). Restore it.")
    if value not in defects:
        known = ", ".join(f"{v} ({d.defect_name})" for v, d in sorted(defects.items()))
        raise DataError(f"Mask {path} has pixel value {value}, which is not a pixel_value in "
                        f"defects_config.json (known: {known}). The mask and the config do "
                        "not belong together; restore both from the dataset archive.")
    return arr != 0, defects[value]


def _check_region(image: Path, mask: Path, defects: dict[int, LocoDefect]) -> None:
    region, _ = read_region(mask, defects)
    w, h = image_io.image_size(image)
    if region.shape != (h, w):
        raise DataError(f"Mask {mask} is {region.shape[1]}x{region.shape[0]} but its image "
                        f"{image} is {w}x{h} (width x height). The pair does not belong "
                        "together or one of them was resized; restore both from the dataset "
                        "archive.")


def _good_split(folder: Path, split: str) -> list[Sample]:
    sdir = folder / split
    if not sdir.is_dir():
        raise DataError(f"No {split}/ folder in {folder}. {_LAYOUT_HELP} "
                        f"({describe_folder(folder)})")
    extra = [p for p in subdirs(sdir) if p.name != "good"]
    if extra:
        raise DataError(f"Unexpected folder {extra[0]}: the {split} split of MVTec LOCO AD "
                        f"holds normal images only, in {sdir / 'good'}. Move or remove it.")
    images = list_images(sdir / "good")
    if not images:
        raise DataError(f"Empty split: no images in {sdir / 'good'}. {_LAYOUT_HELP}")
    return [Sample(p, None, 0, "good") for p in images]


def _region_files(image: Path, gt_type: Path) -> tuple[Path, ...]:
    gdir = gt_type / image.stem
    masks = list_images(gdir)
    if not masks:
        what = "is empty" if gdir.is_dir() else "does not exist"
        raise DataError(f"No ground truth for the anomalous image {image}: the folder {gdir} "
                        f"{what}; it must hold one PNG per defect region (000.png, 001.png, "
                        f"…). {_REEXTRACT}")
    return tuple(masks)


def _test_split(folder: Path, defects: dict[int, LocoDefect]) -> list[Sample]:
    test_dir, gt_dir = folder / "test", folder / "ground_truth"
    if not test_dir.is_dir():
        raise DataError(f"No test/ folder in {folder}. {_LAYOUT_HELP}")
    if not gt_dir.is_dir():
        raise DataError(f"No ground_truth/ folder in {folder}: MVTec LOCO AD ships one mask "
                        f"folder per anomalous test image. {_LAYOUT_HELP}")
    for parent, allowed in ((test_dir, LOCO_TEST_TYPES), (gt_dir, LOCO_ANOMALY_TYPES)):
        odd = [d for d in subdirs(parent) if d.name not in allowed]
        if odd:
            raise DataError(f"Unexpected folder {odd[0]}: MVTec LOCO AD has only "
                            f"{', '.join(allowed)} there. Move or remove it.")
    samples: list[Sample] = []
    checks: list[tuple[Path, Path]] = []
    for dtype in LOCO_TEST_TYPES:
        images = list_images(test_dir / dtype)
        if not images:
            raise DataError(f"Empty folder: no test images in {test_dir / dtype}. "
                            f"{_LAYOUT_HELP}")
        if dtype == "good":
            samples.extend(Sample(p, None, 0, dtype) for p in images)
            continue
        gt_type = gt_dir / dtype
        stray = list_images(gt_type)
        if stray:
            raise DataError(f"Mask {stray[0]} lies directly in {gt_type}: MVTec LOCO AD keeps "
                            f"one folder per image ({gt_type}/<stem>/000.png). For a folder "
                            "in MVTec AD layout use kind='folder'.")
        stems = {p.stem for p in images}
        orphans = [d for d in subdirs(gt_type) if d.name not in stems]
        if orphans:
            raise DataError(f"Ground truth without image: {format_paths(orphans, 3)} has no "
                            f"image '<stem>.png' in {test_dir / dtype}. Restore the image or "
                            "remove the stray folder.")
        for p in images:
            regions = _region_files(p, gt_type)
            samples.append(Sample(p, regions[0], 1, dtype, regions=regions))
            checks.extend((p, m) for m in regions)
    workers = max(1, min(8, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda pm: _check_region(pm[0], pm[1], defects), checks))
    return samples


def resolve_loco_folder(root: str | Path, category: str | None) -> tuple[Path, str]:
    """Find the category folder under an MVTec LOCO AD root (or accept the folder itself)."""
    root = Path(root).expanduser()
    valid = ", ".join(LOCO_CATEGORIES)
    if not root.is_dir():
        raise DataError(f"MVTec LOCO AD root {root} does not exist. Download the dataset "
                        "(python -m multiad.data.download mvtec_loco --root <folder>) or fix "
                        "the path.")
    if category is None:
        if (root.name in LOCO_CATEGORIES or (root / DEFECTS_CONFIG).is_file()) and (
                root / "train").is_dir():  # a category folder, official or in its layout
            return root, root.name
        raise DataError(f"No MVTec LOCO AD category given. Choose one of: {valid}. "
                        f"({describe_folder(root)})")
    if category not in LOCO_CATEGORIES:
        raise DataError(f"Unknown MVTec LOCO AD category '{category}'. Valid categories: "
                        f"{valid}. ({describe_folder(root)})")
    for cand in (root / category, root / "mvtec_loco_anomaly_detection" / category,
                 root / "mvtec_loco" / category, root / "mvtec_loco_ad" / category):
        if cand.is_dir():
            return cand, category
    if root.name == category and (root / "train").is_dir():
        return root, category
    raise DataError(f"MVTec LOCO AD category folder {root / category} not found. "
                    f"({describe_folder(root)}). Valid categories: {valid}.")


def load_mvtec_loco(root: str | Path, category: str | None = None, *, name: str | None = None,
                    kind: str = "mvtec_loco") -> LocoData:
    """Load one MVTec LOCO AD category (``root``: the dataset root or the category folder;
    any folder in its layout with a ``defects_config.json`` when ``category`` is None).

    Checks the layout, that every anomalous test image has its ground-truth folder, and
    that every mask holds one pixel value listed in ``defects_config.json`` and has its
    image's size; each problem raises :class:`DataError` naming the file.
    """
    folder, category = resolve_loco_folder(root, category)
    defects_path = folder / DEFECTS_CONFIG
    defects = read_defects_config(defects_path)
    train = _good_split(folder, "train")
    valid = _good_split(folder, "validation")
    test = _test_split(folder, defects)
    return LocoData(name=name or f"mvtec_loco/{category}", kind=kind, root=folder,
                    layout="mvtec_loco", train=train, test=test, valid=valid,
                    category=category, has_masks=True, defects=defects,
                    defects_path=defects_path)


@dataclass
class LocoRegions:
    """Ground-truth regions of a list of samples at one resolution, ready for sPRO.

    Per sample: ``masks[i]`` K_i×h×w bool (None for a good image), ``saturation[i]`` the
    K_i saturation areas in evaluated pixels, ``defects[i]`` the K_i defect names.
    ``dropped``: region files that vanished when resized (too small for h×w).
    """

    masks: list[np.ndarray | None]
    saturation: list[list[float]]
    defects: list[list[str]]
    dropped: list[Path]
    size: tuple[int, int]


def _resize_bool(mask: np.ndarray, h: int, w: int) -> np.ndarray:
    """Nearest-exact resize, as the mask pipeline (:func:`multiad.data.tensors.resize_mask`)."""
    if mask.shape == (h, w):
        return mask
    t = torch.from_numpy(np.ascontiguousarray(mask)).to(torch.float32)[None, None]
    return (F.interpolate(t, size=(h, w), mode="nearest-exact")[0, 0] > 0.5).numpy()


def loco_regions(samples: Sequence[Sample], defects: dict[int, LocoDefect], h: int,
                 w: int) -> LocoRegions:
    """Decode every region mask of ``samples``, resize it to h×w and derive its saturation
    area there (absolute thresholds scaled by the area ratio h·w / (H·W))."""

    def one(s: Sample) -> tuple[np.ndarray | None, list[float], list[str], list[Path]]:
        masks, sats, names, dropped = [], [], [], []
        for path in s.regions:
            full, defect = read_region(path, defects)
            small = _resize_bool(full, h, w)
            area = int(small.sum())
            if area == 0:
                dropped.append(path)
                continue
            masks.append(small)
            sats.append(defect.saturation_area(area, (h * w) / full.size))
            names.append(defect.defect_name)
        return (np.stack(masks) if masks else None), sats, names, dropped

    workers = max(1, min(8, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        parts = list(pool.map(one, samples))
    return LocoRegions(masks=[p[0] for p in parts], saturation=[p[1] for p in parts],
                       defects=[p[2] for p in parts],
                       dropped=[d for p in parts for d in p[3]], size=(h, w))


def loco_auspro(data: LocoData, anomaly_maps: Any, fpr_limit: float = 0.05
                ) -> dict[str, Any]:
    """AUsPRO of ``anomaly_maps`` (N×h×w, in the order of ``data.test``) as MVTec reports
    it: logical and structural anomalies (each with all good images) and their mean (see
    :func:`multiad.metrics.spro.auspro_report`), and per defect name
    (:func:`multiad.metrics.spro.auspro_per_name`). Evaluated at the maps' resolution."""
    from ..metrics._inputs import to_backend
    from ..metrics.spro import auspro_per_name, auspro_report

    maps = to_backend(anomaly_maps, None)
    if maps.ndim == 4 and maps.shape[1] == 1:
        maps = maps[:, 0]
    if maps.ndim != 3 or maps.shape[0] != len(data.test):
        raise ValueError(f"expected {len(data.test)} anomaly maps (N×h×w), got shape "
                         f"{tuple(maps.shape)}")
    h, w = int(maps.shape[1]), int(maps.shape[2])
    regions = loco_regions(data.test, data.defects, h, w)
    report = auspro_report(maps, regions.masks, regions.saturation,
                           [s.defect for s in data.test], fpr_limit)
    good = [i for i, s in enumerate(data.test) if s.defect == "good"]
    report["per_defect"] = auspro_per_name(maps, regions.masks, regions.saturation,
                                           regions.defects, good, fpr_limit)
    report.update(resolution=[h, w], n_regions_dropped=len(regions.dropped),
                  dropped_regions=[str(p) for p in regions.dropped[:10]])
    return report
