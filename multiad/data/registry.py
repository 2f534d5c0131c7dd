"""One entry point for every dataset kind: ``load_dataset(kind, root, category)``."""

from __future__ import annotations

from pathlib import Path

from .bmad import BMAD_KINDS, load_bmad
from .errors import DataError
from .mvtec import load_folder, load_mvtec, load_mvtec_layout
from .mvtec_loco import load_mvtec_loco
from .samples import AnomalyData
from .synthetic import SYNTHETIC_CATEGORIES, make_synthetic, read_manifest, synthetic_folder

KINDS = ("mvtec", "mvtec_loco", "folder", *BMAD_KINDS, "synthetic")
KIND_ALIASES = {"mvtec_ad": "mvtec", "mvtecad": "mvtec", "brats": "brain", "brain_mri": "brain",
                "liver_ct": "liver", "resc": "retina", "retina_resc": "retina",
                "loco": "mvtec_loco", "mvtec_loco_ad": "mvtec_loco", "mvtecloco": "mvtec_loco",
                "loco_ad": "mvtec_loco"}


def canonical_kind(kind: str) -> str:
    """Normalise a kind name (case, common aliases); unknown kinds raise DataError."""
    key = kind.strip().lower().replace("-", "_")
    key = KIND_ALIASES.get(key, key)
    if key not in KINDS:
        raise DataError(f"Unknown dataset kind '{kind}'. Valid kinds: {', '.join(KINDS)}.")
    return key


def load_synthetic(root: str | Path, category: str | None) -> AnomalyData:
    """Load the synthetic ``category`` set under ``root``, generating it (defaults) if absent."""
    if category not in SYNTHETIC_CATEGORIES:
        raise DataError(f"Unknown synthetic category '{category}'; expected one of "
                        f"{', '.join(SYNTHETIC_CATEGORIES)}.")
    folder = synthetic_folder(root, category)
    if read_manifest(folder) is None:
        folder = make_synthetic(category, folder.parent)
    if category == "loco":  # MVTec LOCO AD's layout, read by its own loader
        return load_mvtec_loco(folder, None, name="synthetic/loco", kind="synthetic")
    data = load_mvtec_layout(folder, name=f"synthetic/{category}", kind="synthetic",
                             category=category, require_masks=True)
    return data


def load_dataset(kind: str, root: str | Path, category: str | None = None) -> AnomalyData:
    """Load a dataset of ``kind`` (mvtec, mvtec_loco, folder, brain, liver, retina, synthetic)
    at ``root``.

    ``category``: the MVTec AD or MVTec LOCO AD category, the synthetic set
    (``texture``/``medical``/``loco``/``realtex``…) or an optional sub-folder for ``folder``;
    ignored by the BMAD sets. Raises DataError with a message naming the offending file or
    folder when the data is not usable.
    """
    kind = canonical_kind(kind)
    if kind == "mvtec":
        return load_mvtec(root, category)
    if kind == "mvtec_loco":
        return load_mvtec_loco(root, category)
    if kind == "folder":
        return load_folder(root, category)
    if kind == "synthetic":
        return load_synthetic(root, category)
    return load_bmad(kind, root)
