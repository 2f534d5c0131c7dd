"""Folder helpers shared by the loaders: listing images, tolerant folder lookup, pairing."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from .errors import DataError

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})


def _has_image_suffix(name: str) -> bool:
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def is_image_file(path: Path) -> bool:
    """True for a visible regular file with an accepted image extension (any case)."""
    return _has_image_suffix(path.name) and path.is_file()


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder`` (sub-folders and other files ignored), sorted."""
    if not folder.is_dir():
        return []
    with os.scandir(folder) as entries:  # DirEntry type checks avoid one stat per file
        names = [e.name for e in entries if _has_image_suffix(e.name) and e.is_file()]
    return [folder / n for n in sorted(names)]


def subdirs(folder: Path) -> list[Path]:
    """Visible sub-folders of ``folder``, sorted by name."""
    if not folder.is_dir():
        return []
    with os.scandir(folder) as entries:
        names = [e.name for e in entries if e.is_dir() and not e.name.startswith(".")]
    return [folder / n for n in sorted(names)]


def child_dir(parent: Path, *names: str) -> Path | None:
    """The sub-folder of ``parent`` called one of ``names``; exact spelling wins over case.

    Raises :class:`DataError` when several differently-cased folders match, because then
    it is unclear which one holds the data.
    """
    for name in names:
        exact = parent / name
        if exact.is_dir():
            return exact
    wanted = {n.lower() for n in names}
    found = [p for p in subdirs(parent) if p.name.lower() in wanted]
    if len(found) > 1:
        raise DataError(f"Ambiguous folders in {parent}: {', '.join(p.name for p in found)}. "
                        "Keep only one of them.")
    return found[0] if found else None


def describe_folder(folder: Path, limit: int = 12) -> str:
    """A short human-readable listing of what a folder contains (for error messages)."""
    if not folder.exists():
        return f"{folder} does not exist"
    if not folder.is_dir():
        return f"{folder} is a file, not a folder"
    dirs = [p.name + "/" for p in subdirs(folder)]
    files = sorted(p.name for p in folder.iterdir() if p.is_file())
    items = dirs + files
    if not items:
        return f"{folder} is empty"
    more = f" ... (+{len(items) - limit} more)" if len(items) > limit else ""
    return f"{folder} contains: {', '.join(items[:limit])}{more}"


def format_paths(paths: Iterable[Path], limit: int = 5) -> str:
    """Join the first ``limit`` paths for a message, with a count of the rest."""
    items = [str(p) for p in paths]
    more = f" (and {len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def index_by_stem(files: Iterable[Path], strip_suffix: str = "") -> dict[str, Path]:
    """Map file stem (minus ``strip_suffix`` when present) to file; duplicates raise."""
    index: dict[str, Path] = {}
    for path in files:
        stem = path.stem
        if strip_suffix and stem.endswith(strip_suffix):
            stem = stem[: -len(strip_suffix)]
        if stem in index:
            raise DataError(f"Two files share the stem '{stem}': {index[stem]} and {path}. "
                            "Pairing images and masks by name is ambiguous; remove one.")
        index[stem] = path
    return index


def pair_by_stem(images: list[Path], mask_dir: Path, mask_suffix: str = "",
                 strict_suffix: bool = False) -> dict[Path, Path]:
    """Pair each image with the mask in ``mask_dir`` whose stem matches.

    The mask stem is the image stem plus ``mask_suffix`` (MVTec: ``_mask``); unless
    ``strict_suffix``, a mask named exactly like the image is accepted too. Raises
    :class:`DataError` naming the file for an image without mask or a mask without image.
    """
    masks = list_images(mask_dir)
    index: dict[str, Path] = {}
    for path in masks:
        stem = path.stem
        if mask_suffix and stem.endswith(mask_suffix):
            stem = stem[: -len(mask_suffix)]
        elif strict_suffix:
            raise DataError(f"Mask {path} is not named '<image stem>{mask_suffix}"
                            f"{path.suffix}', so it matches no image. Rename or remove it.")
        if stem in index:
            raise DataError(f"Two masks map to image stem '{stem}': {index[stem]} and {path}. "
                            "Remove one of them.")
        index[stem] = path
    image_index = index_by_stem(images)
    missing = [p for s, p in image_index.items() if s not in index]
    if missing:
        stem = missing[0].stem
        wanted = (f"'{stem}{mask_suffix}.png'" if strict_suffix
                  else f"'{stem}.png' or '{stem}{mask_suffix}.png'")
        raise DataError(f"Image without mask: {missing[0]} has no mask {wanted} in {mask_dir}"
                        f"{_others(missing)}. Restore the mask or remove the image.")
    orphans = [p for s, p in index.items() if s not in image_index]
    if orphans:
        image_dir = images[0].parent if images else "its image folder"
        stem = next(s for s, p in index.items() if p == orphans[0])
        raise DataError(f"Mask without image: {orphans[0]} has no image '{stem}.*' in "
                        f"{image_dir}{_others(orphans)}. Restore the image or remove the "
                        "stray mask.")
    return {image_index[s]: index[s] for s in image_index}


def _others(paths: list[Path]) -> str:
    return f" ({len(paths) - 1} more such files)" if len(paths) > 1 else ""
