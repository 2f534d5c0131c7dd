"""Real photographs that ship with scikit-image (offline, no download), as float arrays.

The PNG files only (decoded exactly the same everywhere): three 512×512 grey textures
(``brick``, ``grass``, ``gravel``) and ten other scenes, the donors of blended defects.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import DataError

TEXTURES = ("brick", "grass", "gravel")
SCENES = ("astronaut", "camera", "cell", "chelsea", "coffee", "coins", "ihc", "moon",
          "motorcycle_left", "page")
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def photograph_path(name: str) -> Path:
    """The bundled PNG of photograph ``name`` (one of TEXTURES or SCENES)."""
    import skimage.data

    if name not in TEXTURES + SCENES:
        raise DataError(f"Unknown bundled photograph '{name}'; expected one of "
                        f"{', '.join(TEXTURES + SCENES)}.")
    path = Path(skimage.data.__file__).parent / f"{name}.png"
    if not path.is_file():
        raise DataError(f"scikit-image's bundled photograph {path} is missing; reinstall "
                        "scikit-image (a dependency of the package).")
    return path


@lru_cache(maxsize=32)
def photograph(name: str) -> np.ndarray:
    """Photograph ``name`` as read-only float32 in [0, 1]: H×W (grey files) or H×W×3."""
    with Image.open(photograph_path(name)) as img:
        arr = np.asarray(img.convert("L" if img.mode == "L" else "RGB"), dtype=np.float32)
    arr = arr / np.float32(255.0)
    arr.flags.writeable = False
    return arr


def grey(img: np.ndarray) -> np.ndarray:
    """Luminance (ITU-R 601 weights) of an H×W×3 image; an H×W image unchanged."""
    return img if img.ndim == 2 else (img @ _LUMA).astype(np.float32)


def as_channels(img: np.ndarray, channels: int) -> np.ndarray:
    """``img`` with 1 (H×W) or 3 (H×W×3) channels; colour becomes grey when 1 is asked
    for, grey is replicated when 3 are."""
    if channels == 1:
        return grey(img)
    return img if img.ndim == 3 else np.repeat(img[:, :, None], 3, axis=2)
