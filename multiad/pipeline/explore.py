"""The heatmap explorer for people: the static book's plotly figure, and what the book's
explorer page shows.

- ``plotly_explorer`` makes a plotly figure of a run's explorer file
  (:mod:`multiad.explorer_data`) for the static book (frame slider over the images, hover
  shows the dequantised map value and the ground truth; no kernel needed), and
  ``explorer_html`` turns that figure into a compact HTML snippet that loads the *vendored*
  plotly.js (``book/vendor/plotly``), never a CDN.
- ``multiad.pipeline.explore_widgets.widget_explorer`` is the live ipywidgets UI for
  JupyterLab (dataset, method, run, image, map, threshold, opacity; opened by ``make lab``).
  It needs a running kernel; in the static book it does nothing useful.

The book figure is downsampled to ``size`` = 128 px (longest side) because a page's weight
grows with its square; its layer maps are shown on their native grids (H/4 … H/32),
lighter and what the network actually computed; its heatmaps travel as uint8 and the
ground truth as bits: about 55 KB per image (a 24-image figure ≈ 1.3 MB). plotly is
imported where it is used.
"""

from __future__ import annotations

import base64
import html
import io
import json
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from multiad.explorer_data import (
    EXPLORER_FILE,
    LEVELS,
    ExplorerData,
    find_explorer_runs,
    fit_within,
    load_explorer_data,
    resize,
)

if TYPE_CHECKING:  # pragma: no cover - typing only
    import plotly.graph_objects as go

BOOK_PLOTLYJS = "../../_static/plotly/plotly.min.js"
CDN_MARKERS: tuple[str, ...] = ("cdn.plot.ly", "cdn.jsdelivr", "cdnjs", "unpkg.com")


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


def display_range(values: np.ndarray) -> tuple[float, float]:
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
    sh, sw = fit_within(H, W, size)
    src_h, src_w = data.source_size
    fy, fx = src_h / sh, src_w / sw  # display pixel → source pixel
    images = data.images if (sh, sw) == (H, W) else np.rint(
        resize(data.images.astype(np.float32), (sh, sw))).clip(0, 255).astype(np.uint8)
    masks = data.masks if (sh, sw) == (H, W) else resize(
        data.masks.astype(np.float32), (sh, sw)) >= 0.5
    fused = resize(data.map("fused"), (sh, sw))
    f_lo, f_hi = display_range(data.map("fused"))
    layer_grids: dict[str, np.ndarray] = {}
    layer_names = data.layer_names[:4]  # one row of four panels
    for name, (lh, lw) in zip(layer_names, data.layer_shapes, strict=False):
        layer_grids[name] = resize(data.map(name), (min(lh, sh), min(lw, sw)))
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
            lo, hi = display_range(data.map(k))
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
# The live ipywidgets explorer (JupyterLab): multiad/pipeline/explore_widgets.py
# ---------------------------------------------------------------------------------------
