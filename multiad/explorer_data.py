"""A run's explorer file (``explorer.npz``): what ``evaluate`` keeps for people to look
through a run's anomaly maps, and how it is read back.

``save_explorer_data`` keeps a *subset* of a run's test images (rule: ``SUBSET_RULE``) with
their ground truth, the fused and smoothed anomaly map (Eq. 15) and the method's layer maps,
each upsampled to the image size and quantised to uint8 on one scale per map type;
``load_explorer_data`` reads it back (``ExplorerData``); ``find_explorer_runs`` lists the
finished runs of a results folder that have one. The book's plotly explorer and the live
JupyterLab one (``multiad.pipeline.explore``, ``multiad.pipeline.explore_widgets``) read it.

Resolution and size: ``explorer.npz`` keeps the evaluation resolution (capped at
``max_size`` = 256, the paper's size), so the JupyterLab explorer shows every pixel; images
and map codes are stored as row differences (PNG's "Sub" filter, lossless, ``ENCODING``),
which halves the compressed maps: about 0.4 MB for the demo's 128-px runs, about 3.5 MB
for 18 images at 256 px.

Only numpy, torch and Pillow are needed to write and read the data (``evaluate`` runs
without the book extras).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from multiad.atomic import atomic_path

# Multi-AD's maps; another method stores its own layer maps (its method's ``layer_names``)
MAP_NAMES: tuple[str, ...] = ("fused", "M1", "M2", "M3", "M4")
LAYER_NAMES: tuple[str, ...] = MAP_NAMES[1:]
EXPLORER_FILE = "explorer.npz"
FORMAT_VERSION = 1
LEVELS = 255  # uint8 codes 0..255
ENCODING = ("images_dx and q_<map>_dx: uint8 differences along the width axis (axis 2) "
            "mod 256, np.cumsum(x, axis=2, dtype=np.uint8) restores them; map values = "
            "vmin + code * (vmax - vmin) / 255, vmin/vmax in map_names order")
SUBSET_RULE = ("for every defect type (by name) its highest- and its median-scoring test "
               "image, plus the highest- and the lowest-scoring normal image; when more than "
               "{max_images} qualify, the highest-scoring image of each defect type comes "
               "first, then the two normal images, then the medians")
# Where the book's executed pages (``_build/html/book/executed/<page>.html``) find the
# vendored plotly.js that ``html_static_path: ["book/vendor"]`` copies into ``_static``.


# ---------------------------------------------------------------------------------------
# Data: subset, resampling, quantisation, the npz file
# ---------------------------------------------------------------------------------------

def select_subset(scores: np.ndarray, labels: np.ndarray, defects: Sequence[str],
                  max_images: int = 24) -> list[int]:
    """Indices of the images the explorer keeps (rule: ``SUBSET_RULE``), in display order.

    Display order: defect types by name (highest-scoring first), then the normal images
    (highest-scoring first). Normal images are those with label 0; defect types are the
    ``defects`` names of the images with label 1.
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    n = len(scores)
    if len(labels) != n or len(defects) != n:
        raise ValueError(f"scores ({n}), labels ({len(labels)}) and defects "
                         f"({len(defects)}) differ in length")
    types = sorted({defects[i] for i in range(n) if labels[i] != 0})
    top, median = [], []
    for d in types:
        idx = sorted((i for i in range(n) if labels[i] != 0 and defects[i] == d),
                     key=lambda i: (scores[i], -i))  # ascending score, ties: lower index
        top.append(idx[-1])
        median.append(idx[(len(idx) - 1) // 2])
    normal = sorted((i for i in range(n) if labels[i] == 0), key=lambda i: (scores[i], -i))
    normals = [normal[-1], normal[0]] if normal else []
    chosen: list[int] = []
    for i in top + normals + median:  # priority order, capped
        if i not in chosen and len(chosen) < max_images:
            chosen.append(i)
    rank = {d: r for r, d in enumerate(types)}
    return sorted(chosen, key=lambda i: (rank[defects[i]] if labels[i] != 0 else len(types),
                                         -scores[i], i))


def resize(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resample an N×h×w (or N×h×w×C) float array to ``size``: bilinear up, area down."""
    h, w = x.shape[1:3]
    if (h, w) == tuple(size):
        return x.astype(np.float32, copy=False)
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    t = t.permute(0, 3, 1, 2) if t.ndim == 4 else t[:, None]
    if size[0] >= h and size[1] >= w:
        t = F.interpolate(t, size=size, mode="bilinear", align_corners=False)
    else:
        t = F.interpolate(t, size=size, mode="area")
    t = t.permute(0, 2, 3, 1) if x.ndim == 4 else t[:, 0]
    return t.numpy()


def fit_within(h: int, w: int, max_side: int | None) -> tuple[int, int]:
    """(h, w) scaled down so that the longer side is at most ``max_side``."""
    if max_side is None or max(h, w) <= max_side:
        return h, w
    f = max_side / max(h, w)
    return max(1, round(h * f)), max(1, round(w * f))


def quantise(x: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
    """uint8 codes of ``x`` on [vmin, vmax] (error at most half a step, ``step``)."""
    span = vmax - vmin
    if span <= 0:
        return np.zeros(x.shape, dtype=np.uint8)
    q = np.rint((x.astype(np.float64) - vmin) * (LEVELS / span))
    return np.clip(q, 0, LEVELS).astype(np.uint8)


def step(vmin: float, vmax: float) -> float:
    """The value of one uint8 code step on [vmin, vmax]."""
    return max(vmax - vmin, 0.0) / LEVELS


def dequantise(codes: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
    """Float32 values of uint8 codes on [vmin, vmax]."""
    return (vmin + codes.astype(np.float64) * step(vmin, vmax)).astype(np.float32)


def row_delta(a: np.ndarray) -> np.ndarray:
    """uint8 differences along the width (axis 2: N×H×W[×C]), wrapping mod 256.

    PNG's "Sub" filter: bilinearly upsampled maps become runs of equal values, which deflate
    packs about twice as tightly. Lossless; ``row_undelta`` inverts it.
    """
    d = a.astype(np.uint8, copy=True)
    d[:, :, 1:] -= a[:, :, :-1]
    return d


def row_undelta(d: np.ndarray) -> np.ndarray:
    """Inverse of ``row_delta`` (a running sum along axis 2, mod 256)."""
    return np.cumsum(d, axis=2, dtype=np.uint8)


def _squeeze_channel(x: np.ndarray) -> np.ndarray:
    """N×1×h×w → N×h×w (layer maps and masks may come with a channel axis)."""
    x = np.asarray(x)
    return x[:, 0] if x.ndim == 4 and x.shape[1] == 1 else x


def save_explorer_data(path: str | Path, images_rgb_u8: np.ndarray, masks: np.ndarray,
                       layer_maps: Sequence[np.ndarray], smoothed: np.ndarray,
                       scores: np.ndarray, labels: np.ndarray, defects: Sequence[str],
                       paths: Sequence[str], max_images: int = 24,
                       max_size: int | None = 256,
                       layer_names: Sequence[str] = LAYER_NAMES) -> Path:
    """Write the explorer's subset of a test split to ``path`` (an ``explorer.npz``), atomically.

    Inputs are the whole test split: images N×H×W×3 uint8, masks N×H×W, the method's layer
    maps N×h_n×w_n (``layer_names``: Multi-AD's M1–M4 by default), the fused smoothed map
    N×H×W, scores, labels, defect types and paths.
    Kept: the images chosen by ``select_subset`` (at most ``max_images``), resized so the
    longer side is at most ``max_size``. Each layer map is upsampled bilinearly to the image
    size; every map type (fused and each layer) is quantised to uint8 on its own [vmin, vmax]
    (its minimum and maximum over the kept images), stored with it.
    """
    images = np.asarray(images_rgb_u8)
    masks = _squeeze_channel(masks)
    smoothed = np.asarray(smoothed)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"images must be N×H×W×3 uint8, got {images.shape} {images.dtype}")
    n, h, w = images.shape[:3]
    if masks.shape != (n, h, w) or smoothed.shape != (n, h, w):
        raise ValueError(f"masks {masks.shape} and smoothed {smoothed.shape} must be "
                         f"{(n, h, w)} like the images")
    if len(layer_maps) != len(layer_names):
        raise ValueError(f"expected {len(layer_names)} layer maps ({', '.join(layer_names)}), "
                         f"got {len(layer_maps)}")
    map_names = ("fused", *layer_names)
    layers = [_squeeze_channel(m) for m in layer_maps]
    if any(m.ndim != 3 or len(m) != n for m in layers):
        raise ValueError(f"layer maps must be N×h×w, got {[m.shape for m in layers]}")
    idx = select_subset(scores, labels, list(defects), max_images)
    size = fit_within(h, w, max_size)
    sel_masks = masks[idx].astype(bool)
    if size != (h, w):
        sel_images = np.rint(resize(images[idx].astype(np.float32), size)).clip(0, 255)
        sel_images = sel_images.astype(np.uint8)
        sel_masks = resize(sel_masks.astype(np.float32), size) >= 0.5
    else:
        sel_images = images[idx]
    maps = {"fused": resize(smoothed[idx].astype(np.float32), size)}
    for name, m in zip(layer_names, layers, strict=True):
        maps[name] = resize(m[idx].astype(np.float32), size)
    vmin = np.array([float(maps[k].min()) if len(idx) else 0.0 for k in map_names])
    vmax = np.array([float(maps[k].max()) if len(idx) else 0.0 for k in map_names])
    codes = {f"q_{k}_dx": row_delta(quantise(maps[k], vmin[j], vmax[j]))
             for j, k in enumerate(map_names)}
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(
            fh, version=np.array(FORMAT_VERSION), encoding=np.array(ENCODING),
            images_dx=row_delta(sel_images), masks=sel_masks,
            map_names=np.array(map_names), vmin=vmin, vmax=vmax,
            scores=np.asarray(scores, dtype=np.float32)[idx],
            labels=np.asarray(labels).astype(np.int8)[idx],
            defects=np.array([str(defects[i]) for i in idx], dtype=str),
            paths=np.array([str(paths[i]) for i in idx], dtype=str),
            index=np.array(idx, dtype=np.int64),
            source_size=np.array([h, w], dtype=np.int64),
            layer_shapes=np.array([m.shape[1:] for m in layers], dtype=np.int64),
            rule=np.array(SUBSET_RULE.format(max_images=max_images)), **codes)
    return Path(path)


@dataclass
class ExplorerData:
    """The content of an ``explorer.npz``; maps stay uint8 until ``map()`` dequantises them."""

    images: np.ndarray  # N×H×W×3 uint8
    masks: np.ndarray  # N×H×W bool
    codes: dict[str, np.ndarray]  # map name → N×H×W uint8
    vmin: dict[str, float]
    vmax: dict[str, float]
    scores: np.ndarray  # N float32
    labels: np.ndarray  # N int8 (0 normal, 1 anomalous)
    defects: list[str]
    paths: list[str]
    index: np.ndarray  # N: positions in the run's test split
    source_size: tuple[int, int]  # (H, W) the run was evaluated at
    layer_shapes: list[tuple[int, int]]  # native (h_n, w_n) of each layer map at source_size
    rule: str
    source: str = ""  # the file it came from
    aupimo: np.ndarray | None = None  # each image's AUPIMO (metrics.json; NaN: normal)
    _cache: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def map_names(self) -> list[str]:
        """``fused``, then the method's layer maps (Multi-AD: M1–M4)."""
        return list(self.codes)

    @property
    def layer_names(self) -> list[str]:
        return self.map_names[1:]

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of the stored images and maps."""
        return int(self.images.shape[1]), int(self.images.shape[2])

    def step(self, name: str) -> float:
        """One quantisation step of map ``name`` (the data's resolution in map units)."""
        return step(self.vmin[name], self.vmax[name])

    def map(self, name: str) -> np.ndarray:
        """Dequantised N×H×W float32 values of map ``name`` (one of ``map_names``)."""
        if name not in self._cache:
            self._cache[name] = dequantise(self.codes[name], self.vmin[name], self.vmax[name])
        return self._cache[name]

    def caption(self, i: int) -> str:
        """One line about image ``i``: defect type, score, label, file name."""
        kind = "anomalous" if self.labels[i] else "normal"
        return (f"{i + 1}/{len(self)} · {self.defects[i]} ({kind}) · score "
                f"{self.scores[i]:.4g}{self.aupimo_text(i)} · {Path(self.paths[i]).name}")

    def aupimo_text(self, i: int) -> str:
        """`` · AUPIMO 0.42`` for an anomalous image whose run has AUPIMO, else empty."""
        if self.aupimo is None or np.isnan(self.aupimo[i]):
            return ""
        return f" · AUPIMO {self.aupimo[i]:.3f}"


def load_explorer_data(run_dir_or_npz: str | Path) -> ExplorerData:
    """Read an ``explorer.npz`` (or the one in a run folder)."""
    p = Path(run_dir_or_npz)
    if p.is_dir():
        p = p / EXPLORER_FILE
    with np.load(p, allow_pickle=False) as z:
        names = [str(s) for s in z["map_names"]]
        return ExplorerData(
            images=row_undelta(z["images_dx"]), masks=z["masks"].astype(bool),
            codes={k: row_undelta(z[f"q_{k}_dx"]) for k in names},
            vmin={k: float(v) for k, v in zip(names, z["vmin"], strict=True)},
            vmax={k: float(v) for k, v in zip(names, z["vmax"], strict=True)},
            scores=z["scores"], labels=z["labels"], defects=[str(s) for s in z["defects"]],
            paths=[str(s) for s in z["paths"]], index=z["index"],
            source_size=(int(z["source_size"][0]), int(z["source_size"][1])),
            layer_shapes=[(int(a), int(b)) for a, b in z["layer_shapes"]],
            rule=str(z["rule"]), source=str(p), aupimo=_aupimo_of(p.parent, z["index"]))


def _aupimo_of(run_dir: Path, index: np.ndarray) -> np.ndarray | None:
    """Each kept image's AUPIMO from the run's ``metrics.json`` (NaN: normal image), or
    None when the run has none (written before AUPIMO, or too few normal pixels)."""
    try:
        values = json.loads((run_dir / "metrics.json").read_text())["metrics"]["aupimo_per_image"]
    except (OSError, KeyError, TypeError, ValueError):
        return None
    if values is None or len(values) <= int(index.max(initial=-1)):
        return None
    return np.array([np.nan if values[i] is None else values[i] for i in index], np.float64)


def find_explorer_runs(results_dir: str | Path) -> list[Path]:
    """Run folders of ``results_dir`` that have an explorer file (``runs/*/seed*/``), less
    those another process is writing now (their files may be of two evaluations)."""
    from multiad.engine.run_lock import is_locked

    return [p.parent for p in sorted(Path(results_dir).glob(f"runs/*/seed*/{EXPLORER_FILE}"))
            if not is_locked(p.parent)]


