"""The interactive heatmap explorer: what a person uses to look through a run's anomaly maps.

Three layers, from disk to screen:

- ``save_explorer_data`` (called by ``evaluate``) keeps a *subset* of a run's test images
  (rule: ``SUBSET_RULE``) with their ground truth, the fused and smoothed anomaly map
  (Eq. 15) and the four layer maps M1–M4 (Eq. 13), each upsampled to the image size and
  quantised to uint8 on one scale per map type, in a small ``explorer.npz``
  (``load_explorer_data`` reads it back).
- ``plotly_explorer`` makes a plotly figure of it for the static book (frame slider over the
  images, hover shows the dequantised map value and the ground truth; no kernel needed), and
  ``explorer_html`` turns that figure into a compact HTML snippet that loads the *vendored*
  plotly.js (``book/vendor/plotly``), never a CDN.
- ``multiad.explore_widgets.widget_explorer`` is the live ipywidgets UI for JupyterLab (dataset,
  method, run, image, map, threshold, opacity; opened by ``make lab``). It needs a
  running kernel; in the static book it does nothing useful.

Resolution and size: ``explorer.npz`` keeps the evaluation resolution (capped at
``max_size`` = 256, the paper's size), so the JupyterLab explorer shows every pixel; images
and map codes are stored as row differences (PNG's "Sub" filter, lossless, ``ENCODING``),
which halves the compressed maps: about 0.4 MB for the demo's 128-px runs, about 3.5 MB
for 18 images at 256 px. The book figure is downsampled to ``size`` = 128 px (longest side)
because a page's weight grows with its square; its layer maps are shown on their native
grids (H/4 … H/32), lighter and what the network actually computed; its heatmaps travel
as uint8 and the ground truth as bits: about 55 KB per image (a 24-image figure ≈ 1.3 MB).

Only numpy, torch and Pillow are needed to write and read the data (``evaluate`` runs
without the book extras); plotly and ipywidgets are imported where they are used.
"""

from __future__ import annotations

import base64
import html
import io
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from multiad.atomic import atomic_path

if TYPE_CHECKING:  # pragma: no cover - typing only
    import plotly.graph_objects as go

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
BOOK_PLOTLYJS = "../../_static/plotly/plotly.min.js"
CDN_MARKERS: tuple[str, ...] = ("cdn.plot.ly", "cdn.jsdelivr", "cdnjs", "unpkg.com")


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


def _resize(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
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


def _fit(h: int, w: int, max_side: int | None) -> tuple[int, int]:
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
    size = _fit(h, w, max_size)
    sel_masks = masks[idx].astype(bool)
    if size != (h, w):
        sel_images = np.rint(_resize(images[idx].astype(np.float32), size)).clip(0, 255)
        sel_images = sel_images.astype(np.uint8)
        sel_masks = _resize(sel_masks.astype(np.float32), size) >= 0.5
    else:
        sel_images = images[idx]
    maps = {"fused": _resize(smoothed[idx].astype(np.float32), size)}
    for name, m in zip(layer_names, layers, strict=True):
        maps[name] = _resize(m[idx].astype(np.float32), size)
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


def run_title(run_dir: str | Path, profile: str | None = None) -> str:
    """``dataset · seed · profile · teacher`` of a run (backbone and weights from
    ``metrics.json``)."""
    run_dir = Path(run_dir)
    parts = [run_dir.parent.name, run_dir.name]
    if profile:
        parts.append(f"profile {profile}")
    try:
        t = json.loads((run_dir / "metrics.json").read_text())["teacher"]
        parts.append(f"teacher {t.get('backbone', 'wide_resnet50_2')} ({t['kind']})")
    except (OSError, KeyError, TypeError, ValueError):
        parts.append("teacher unknown")
    return " · ".join(parts)


# ---------------------------------------------------------------------------------------
# The plotly figure (static book)
# ---------------------------------------------------------------------------------------

def _data_uri(rgb: np.ndarray, fmt: str = "JPEG") -> str:
    """An H×W×3 (or H×W) uint8 array as a base64 data URI (JPEG q90 4:4:4, or PNG)."""
    from PIL import Image

    buf = io.BytesIO()
    if fmt == "JPEG":
        Image.fromarray(rgb).save(buf, format="JPEG", quality=90, subsampling=0)
        mime = "image/jpeg"
    else:
        Image.fromarray(rgb).save(buf, format="PNG", optimize=True)
        mime = "image/png"
    return f"data:{mime};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _display_range(values: np.ndarray) -> tuple[float, float]:
    """Colour range of a map type: its 1% quantile to its maximum (as the heatmap PNGs)."""
    lo, hi = float(np.quantile(values, 0.01)), float(values.max())
    return lo, hi if hi > lo else lo + 1e-6


def plotly_explorer(data: ExplorerData, title: str = "", size: int = 128,
                    layers: bool = True) -> go.Figure:
    """A plotly figure with a frame slider over the images of ``data`` (no kernel needed).

    Per image: the image, its ground truth, the fused map (Eq. 15) with hover showing the
    dequantised value and the ground truth, the fused map over the image, and (``layers``)
    the method's layer maps (Multi-AD: M1–M4) on their native grids with hover values.
    Images and maps are downsampled so the longer side is at most ``size``; axes are in the
    evaluated image's pixel coordinates and zoom together. Map values are floats here (for
    JupyterLab); ``explorer_html`` sends them to the browser as uint8 again.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from multiad.viz import overlay

    n = len(data)
    if n == 0:
        raise ValueError("no images in the explorer data")
    H, W = data.size
    sh, sw = _fit(H, W, size)
    src_h, src_w = data.source_size
    fy, fx = src_h / sh, src_w / sw  # display pixel → source pixel
    images = data.images if (sh, sw) == (H, W) else np.rint(
        _resize(data.images.astype(np.float32), (sh, sw))).clip(0, 255).astype(np.uint8)
    masks = data.masks if (sh, sw) == (H, W) else _resize(
        data.masks.astype(np.float32), (sh, sw)) >= 0.5
    fused = _resize(data.map("fused"), (sh, sw))
    f_lo, f_hi = _display_range(data.map("fused"))
    layer_grids: dict[str, np.ndarray] = {}
    layer_names = data.layer_names[:4]  # one row of four panels
    for name, (lh, lw) in zip(layer_names, data.layer_shapes, strict=False):
        layer_grids[name] = _resize(data.map(name), (min(lh, sh), min(lw, sw)))
    fused_step = data.step("fused")

    rows = 2 if layers else 1
    names = ["image", "ground truth", "fused map (Eq. 15)", "fused map over image"]
    if layers:
        names += [f"{k} ({gh}×{gw})" for k, (gh, gw) in
                  ((k, layer_grids[k].shape[1:]) for k in layer_names)]
    fig = make_subplots(rows=rows, cols=4, subplot_titles=names, horizontal_spacing=0.015,
                        vertical_spacing=0.07)

    def img_trace(label: str) -> dict[str, Any]:
        return {"x0": (fx - 1) / 2, "dx": fx, "y0": (fy - 1) / 2, "dy": fy, "name": label,
                "hovertemplate": f"{label}<br>x %{{x:.0f}}, y %{{y:.0f}}<extra></extra>"}

    def frame_traces(i: int) -> list[dict[str, Any]]:
        """What changes from image to image: picture sources, map values, ground truth."""
        gt = masks[i].astype(np.uint8)
        traces = [
            {"type": "image", "source": _data_uri(images[i])},
            {"type": "image", "source": _data_uri(np.stack([gt * 255] * 3, -1), "PNG")},
            {"type": "heatmap", "z": fused[i], "customdata": gt},
            {"type": "image", "source": _data_uri(overlay(images[i], fused[i], f_lo, f_hi))},
        ]
        if layers:
            traces += [{"type": "heatmap", "z": layer_grids[k][i]} for k in layer_names]
        return traces

    first = [{k: v for k, v in t.items() if k != "type"} for t in frame_traces(0)]
    fig.add_trace(go.Image(**first[0], **img_trace("image")), 1, 1)
    fig.add_trace(go.Image(**first[1], **img_trace("ground truth")), 1, 2)
    fig.add_trace(go.Heatmap(
        **first[2], x0=(fx - 1) / 2, dx=fx, y0=(fy - 1) / 2, dy=fy, colorscale="Jet",
        zmin=f_lo, zmax=f_hi, name="fused", meta={"dequant": [data.vmin["fused"], fused_step]},
        colorbar={"title": {"text": "fused", "side": "right"}, "len": 0.42 if layers else 0.9,
                  "y": 1.0, "yanchor": "top", "thickness": 12, "x": 1.0, "xpad": 4},
        hovertemplate=("fused %{z:.4g}<br>ground truth %{customdata}<br>"
                       "x %{x:.0f}, y %{y:.0f}<extra></extra>")), 1, 3)
    fig.add_trace(go.Image(**first[3], **img_trace("fused over image")), 1, 4)
    if layers:
        for c, k in enumerate(layer_names):
            gh, gw = layer_grids[k].shape[1:]
            ly, lx = src_h / gh, src_w / gw
            lo, hi = _display_range(data.map(k))
            fig.add_trace(go.Heatmap(
                **first[4 + c], x0=(lx - 1) / 2, dx=lx, y0=(ly - 1) / 2, dy=ly,
                colorscale="Jet", zmin=lo, zmax=hi, showscale=False, name=k,
                meta={"dequant": [data.vmin[k], data.step(k)]},
                hovertemplate=f"{k} %{{z:.4g}}<br>x %{{x:.0f}}, y %{{y:.0f}}<extra></extra>"),
                2, c + 1)

    def frame_title(i: int) -> dict[str, Any]:
        return {"text": f"{html.escape(title)}<br><span style=\"font-size:12px\">"
                        f"{html.escape(data.caption(i))}</span>",
                "x": 0.0, "xanchor": "left", "font": {"size": 15}}

    fig.frames = [go.Frame(name=str(i), data=frame_traces(i), traces=list(range(len(first))),
                           layout={"title": frame_title(i)}) for i in range(n)]
    steps = [{"label": str(i + 1), "method": "animate",
              "args": [[str(i)], {"mode": "immediate", "frame": {"duration": 0, "redraw": True},
                                  "transition": {"duration": 0}}]} for i in range(n)]
    fig.update_layout(
        title=frame_title(0), height=220 * rows + 150, margin={"l": 10, "r": 60, "t": 80,
                                                               "b": 10},
        sliders=[{"active": 0, "steps": steps, "x": 0.0, "len": 1.0, "y": 0, "yanchor": "top",
                  "pad": {"t": 20, "b": 0}, "currentvalue": {"prefix": "image ",
                                                             "font": {"size": 13}},
                  "font": {"size": 10}}],
        plot_bgcolor="white", hoverlabel={"font": {"size": 12}})
    # one pixel grid for all panels, y pointing down, square pixels, linked zoom
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False, matches="x",
                     constrain="domain", range=[-0.5, src_w - 0.5])
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, matches="y",
                     range=[src_h - 0.5, -0.5], scaleanchor="x", constrain="domain")
    fig.update_annotations(font_size=12)
    return fig


def _as_array(v: Any) -> np.ndarray:
    """A plotly data array (list, numpy array or ``{dtype, bdata, shape}``) as numpy."""
    if isinstance(v, dict) and "bdata" in v:
        a = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
        shape = [int(x) for x in str(v.get("shape", len(a))).split(",")]
        return a.reshape(shape)
    return np.asarray(v)


def _typed(a: np.ndarray, **extra: Any) -> dict[str, Any]:
    """plotly.js's typed-array spec for a uint8 array (what plotly.py writes for numpy)."""
    return {"dtype": "u1", "bdata": base64.b64encode(a.tobytes()).decode("ascii"),
            "shape": ", ".join(str(x) for x in a.shape), **extra}


def _compact(trace: dict[str, Any], q: Sequence[float] | None) -> dict[str, Any]:
    """A heatmap trace made light for the browser (undone by ``_UNPACK_JS``).

    ``z`` becomes its uint8 codes on ``q = (vmin, step)``; a 0/1 ``customdata`` (the
    ground truth) is bit-packed (8 pixels a byte).
    """
    out = dict(trace)
    if q is not None and trace.get("z") is not None:
        vmin, stp = float(q[0]), float(q[1])
        z = _as_array(trace["z"]).astype(np.float64)
        codes = np.zeros(z.shape, np.uint8) if stp <= 0 else np.clip(
            np.rint((z - vmin) / stp), 0, LEVELS).astype(np.uint8)
        out["z"] = _typed(codes)
    if trace.get("customdata") is not None:
        cd = _as_array(trace["customdata"])
        if cd.ndim == 2 and cd.dtype == np.uint8 and cd.max(initial=0) <= 1:
            out["customdata"] = _typed(np.packbits(cd, axis=None), bits=list(cd.shape))
    return out


# Undoes ``_compact`` in the browser: uint8 ``z`` codes → values with the trace's
# ``meta.dequant = q = [vmin, step]`` (frames carry no meta: the trace's own is passed), and
# bit-packed ``customdata`` → rows of 0/1.
_UNPACK_JS = """function(t,q){function raw(a){return atob(a.bdata);}
var z=t.z,c=t.customdata,r,k,row,b;
if(q&&z&&z.dtype==="u1"&&typeof z.bdata==="string"){b=raw(z);var s=z.shape.split(","),
h=+s[0],w=+s[1],o=[];for(r=0;r<h;r++){row=new Array(w);
for(k=0;k<w;k++)row[k]=q[0]+q[1]*b.charCodeAt(r*w+k);o.push(row);}t.z=o;}
if(c&&c.bits&&typeof c.bdata==="string"){b=raw(c);var ch=c.bits[0],cw=c.bits[1],m=[];
for(r=0;r<ch;r++){row=new Array(cw);for(k=0;k<cw;k++){var i=r*cw+k;
row[k]=(b.charCodeAt(i>>3)>>(7-(i&7)))&1;}m.push(row);}t.customdata=m;}}"""


def explorer_html(fig: go.Figure, plotlyjs: str | None = BOOK_PLOTLYJS,
                  div_id: str | None = None, compact: bool = True) -> str:
    """An HTML snippet that draws ``fig`` with no kernel and no network.

    ``plotlyjs``: the URL of a local plotly.min.js to load first (``BOOK_PLOTLYJS`` is the
    vendored copy as seen from ``book/executed/<page>.html``), or None when the page already
    loaded it (load it once per page: the first figure only). ``compact``: heatmaps travel as
    uint8 codes (base64) and are dequantised in the browser, ~4× lighter than float32. Unlike
    ``fig.to_html`` this never autoplays the frames and never points at a CDN.
    """
    from plotly.io.json import to_json_plotly

    d = fig.to_dict()
    data, layout, frames = d.get("data", []), d.get("layout", {}), d.get("frames", [])
    if compact:  # the dequantisation parameters live in each heatmap's meta
        qs = [(t.get("meta") or {}).get("dequant") if isinstance(t.get("meta"), dict) else None
              for t in data]
        data = [_compact(t, q) for t, q in zip(data, qs, strict=True)]
        frames = [{**f, "data": [_compact(t, qs[j]) for t, j in zip(
            f.get("data", []), f.get("traces", range(len(data))), strict=False)]}
            for f in frames]
    div_id = div_id or f"multiad-explorer-{uuid.uuid4().hex[:12]}"
    height = layout.get("height", 600)
    config = {"responsive": True, "displaylogo": False,
              "modeBarButtonsToRemove": ["select2d", "lasso2d"]}
    load = ""
    if plotlyjs:
        if not plotlyjs.endswith(".js") or any(m in plotlyjs for m in CDN_MARKERS):
            raise ValueError(f"plotlyjs must be a local .js path, got {plotlyjs!r}")
        load = ("<script>window.PlotlyConfig = {MathJaxConfig: 'local'};</script>\n"
                f'<script charset="utf-8" src="{html.escape(plotlyjs)}"></script>\n')
    return (
        f'{load}<div id="{div_id}" class="plotly-graph-div" '
        f'style="height:{int(height)}px; width:100%;"></div>\n'
        "<script>(function(){"
        f"var id={json.dumps(div_id)},dq={_UNPACK_JS.replace(chr(10), '')};"
        f"var data={to_json_plotly(data)};var layout={to_json_plotly(layout)};"
        f"var frames={to_json_plotly(frames)};"
        "var qs=data.map(function(t){return t.meta&&t.meta.dequant;});"
        "data.forEach(function(t,j){dq(t,qs[j]);});"
        "frames.forEach(function(f){(f.data||[]).forEach(function(t,k){"
        "dq(t,qs[f.traces?f.traces[k]:k]);});});"
        f"Plotly.newPlot(id,data,layout,{json.dumps(config)})"
        ".then(function(){return Plotly.addFrames(id,frames);});"
        "})();</script>")


def book_explorers(results_dir: str | Path, profile: str | None = None, max_runs: int = 4,
                   size: int = 128, plotlyjs: str = BOOK_PLOTLYJS) -> list[tuple[str, str]]:
    """(title, HTML) of one explorer figure per run (at most ``max_runs``) for a book page.

    Only the first snippet loads plotly.js (``plotlyjs``, relative to the page).
    """
    out: list[tuple[str, str]] = []
    for run in find_explorer_runs(results_dir)[:max_runs]:
        data = load_explorer_data(run)
        if not len(data):  # an empty test split: nothing to show
            continue
        title = run_title(run, profile)
        fig = plotly_explorer(data, title=title, size=size)
        out.append((title, explorer_html(fig, None if out else plotlyjs)))
    return out


def explorer_summary(results_dir: str | Path, shown: int) -> str:
    """Markdown: how many runs have explorer data, how many are shown, the subset rule."""
    runs = find_explorer_runs(results_dir)
    if not runs:
        return (f"No run under `{results_dir}` has an `{EXPLORER_FILE}` yet: it is written "
                "when a run is evaluated (`make reproduce`, `multiad run`).")
    rule = load_explorer_data(runs[0]).rule
    more = f" (the first {shown}; raise `max_runs` for more)" if shown < len(runs) else ""
    return (f"{len(runs)} evaluated run(s) under `{results_dir}`, {shown} shown{more}. "
            f"Images kept per run: {rule}.")


# ---------------------------------------------------------------------------------------
# The live ipywidgets explorer (JupyterLab): multiad/explore_widgets.py
# ---------------------------------------------------------------------------------------
