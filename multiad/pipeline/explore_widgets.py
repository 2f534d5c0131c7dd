"""The live ipywidgets heatmap explorer for JupyterLab (``widget_explorer``).

Pickers, from coarse to fine: dataset → method → run (seed) → image (with previous/next
buttons); then the map (fused, or the method's layer maps: Multi-AD's M1–M4, Eq. 13), a
threshold (in map units, one quantisation step per notch) and the overlay opacity. Every
change redraws one picture — image with its ground-truth outline · ground truth · map over
the image · pixels at or above the threshold against the ground truth — and a line with the
image's score, label and the threshold's IoU, precision and recall.

Runs are the ``runs/<dataset>/seed<k>/explorer.npz`` of a results folder
(``find_explorer_runs``); a run's method is ``config.method`` (or a top-level ``method``) of
its ``metrics.json``, ``DEFAULT_METHOD`` without one, so results holding several methods'
runs get a working method picker with no change to their layout on disk.

For the browser (``tests/test_lab_browser.py``): every control carries a CSS class
``multiad-<name>`` (``CSS``), and a callback that raises shows its traceback in the
``error`` box of the widget (and still raises, so JupyterLab's log console has it too):
a failing callback cannot leave a silently frozen picture. Loaded runs, display ranges and
default thresholds are cached, so a change costs one matplotlib drawing (about 0.15 s on one
CPU core for 256×256 images).
"""

from __future__ import annotations

import html
import io
import json
import traceback
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from multiad.explorer_data import (
    EXPLORER_FILE,
    MAP_NAMES,
    ExplorerData,
    find_explorer_runs,
    load_explorer_data,
)
from multiad.pipeline.explore import display_range

DEFAULT_METHOD = "multiad"
CSS = "multiad"  # prefix of the controls' CSS classes: multiad-explorer, multiad-image, …
MAX_LOADED = 4  # runs kept in memory (a 24-image 256-px run: ~40 MB once all maps are used)
PANEL_PX = (192, 320)  # a picture panel's longer side in pixels: the image's, within these


# ---------------------------------------------------------------------------------------
# Runs: dataset · method · seed
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RunEntry:
    """One run with an explorer file: what it is (dataset, method, seed) and where."""

    dataset: str
    method: str
    seed: str
    path: Path

    def label(self, with_method: bool = False) -> str:
        """``dataset / seed`` (``dataset / method / seed`` when methods are to be told apart)."""
        parts = (self.dataset, self.method, self.seed) if with_method else (self.dataset,
                                                                             self.seed)
        return " / ".join(parts)


def run_method(run_dir: str | Path) -> str:
    """The method of a run: ``config.method`` or ``method`` of its metrics.json, else
    ``DEFAULT_METHOD``."""
    try:
        metrics = json.loads((Path(run_dir) / "metrics.json").read_text())
    except (OSError, ValueError):
        return DEFAULT_METHOD
    if not isinstance(metrics, dict):
        return DEFAULT_METHOD
    config = metrics.get("config")
    method = config.get("method") if isinstance(config, dict) else None
    return str(method or metrics.get("method") or DEFAULT_METHOD)


def explorer_runs(results_dir: str | Path) -> list[RunEntry]:
    """Every run of ``results_dir`` with an explorer file, as ``RunEntry`` (path order)."""
    return [RunEntry(p.parent.name, run_method(p), p.name, p)
            for p in find_explorer_runs(results_dir)]


def pick_run(runs: Sequence[RunEntry], dataset: str, method: str | None = None,
             seed: str | None = None) -> RunEntry:
    """The run of ``dataset`` nearest to the current choice: same method and seed, else
    same method, else same seed, else its first."""
    mine = [r for r in runs if r.dataset == dataset]
    for m, s in ((method, seed), (method, None), (None, seed), (None, None)):
        for r in mine:
            if m in (None, r.method) and s in (None, r.seed):
                return r
    raise KeyError(f"no run of dataset {dataset!r}")


def _unique(values: Sequence[str]) -> list[str]:
    """``values`` without repeats, first occurrence order."""
    return list(dict.fromkeys(values))


# ---------------------------------------------------------------------------------------
# The picture
# ---------------------------------------------------------------------------------------

def _figsize(h: int, w: int, dpi: int, panels: int = 4) -> tuple[float, float]:
    """Figure inches so that each panel shows about one screen pixel per image pixel."""
    side = min(max(h, w, PANEL_PX[0]), PANEL_PX[1])
    pw, ph = side * w / max(h, w) / dpi, side * h / max(h, w) / dpi
    return panels * pw * 1.1 + 0.8, ph + 0.45


def _render_png(img: np.ndarray, mask: np.ndarray, heat: np.ndarray, lo: float, hi: float,
                thr: float, alpha: float, name: str, dpi: int = 80
                ) -> tuple[bytes, dict[str, float]]:
    """The widget's picture (image · ground truth · map overlay · above threshold vs GT)."""
    from matplotlib.figure import Figure

    above = heat >= thr
    gt = mask.astype(bool)
    tp, fp, fn = int((above & gt).sum()), int((above & ~gt).sum()), int((~above & gt).sum())
    stats = {"above": int(above.sum()), "gt": int(gt.sum()), "tp": tp, "fp": fp, "fn": fn,
             "iou": tp / max(tp + fp + fn, 1), "precision": tp / max(tp + fp, 1),
             "recall": tp / max(tp + fn, 1)}
    fig = Figure(figsize=_figsize(*heat.shape, dpi))  # no pyplot: the backend stays alone
    axes = fig.subplots(1, 4)
    axes[0].imshow(img)
    if gt.any():
        axes[0].contour(gt, levels=[0.5], colors="lime", linewidths=0.8)
    axes[1].imshow(gt, cmap="gray", vmin=0, vmax=1)
    axes[2].imshow(img)
    im = axes[2].imshow(heat, cmap="jet", vmin=lo, vmax=hi, alpha=alpha)
    fig.colorbar(im, ax=axes[2], fraction=0.046, pad=0.02)
    # above threshold vs ground truth: TP yellow, FP red, FN blue, over the dimmed image
    colour = np.zeros(img.shape, np.float32)
    colour[above & gt] = (1.0, 0.85, 0.0)
    colour[above & ~gt] = (0.9, 0.1, 0.1)
    colour[~above & gt] = (0.1, 0.4, 1.0)
    base = img.astype(np.float32) / 255 * 0.6
    hit = (above | gt)[..., None]
    axes[3].imshow(np.where(hit, (1 - alpha) * base + alpha * colour, base).clip(0, 1))
    titles = ["image (GT outline)", "ground truth", f"{name} (opacity {alpha:.2f})",
              f"{name} ≥ {thr:.4g}: TP yellow · FP red · FN blue"]
    for ax, t in zip(axes, titles, strict=True):
        ax.set_title(t, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue(), stats


def _stats_html(d: ExplorerData, i: int, name: str, heat: np.ndarray,
                s: dict[str, float]) -> str:
    """The line above the picture: score and label first, then the threshold's counts."""
    label = f"anomalous ({d.defects[i]})" if d.labels[i] else "normal"
    colour = "#b00020" if d.labels[i] else "#1b5e20"
    return (
        f'<span style="font-size:1.1em"><b>score {d.scores[i]:.4g}</b> · label '
        f'<b style="color:{colour}">{html.escape(label)}</b>{d.aupimo_text(i)}</span> · '
        f"image {i + 1}/{len(d)} "
        f"· {html.escape(Path(d.paths[i]).name)}<br>{name}: pixel max {heat.max():.4g}; "
        f"{s['above']} px ≥ threshold, ground truth {s['gt']} px → IoU {s['iou']:.3f}, "
        f"precision {s['precision']:.3f}, recall {s['recall']:.3f} "
        f"(values dequantised from uint8, step {d.step(name):.3g})")


# ---------------------------------------------------------------------------------------
# The widget
# ---------------------------------------------------------------------------------------

class ExplorerUI:
    """The ipywidgets explorer; ``widget_explorer`` builds it. Displays as its ``ui`` box.

    Controls: ``dataset``, ``method``, ``run`` (every run; picking a dataset or a method
    moves it to that one's nearest run), ``image`` with ``prev``/``next``, ``map_choice``
    (fused or M1–M4), ``threshold`` (map units, step = one quantisation step) and
    ``opacity``; outputs: ``stats`` (HTML: score, label, counts), ``view`` (the PNG) and
    ``error`` (a callback's traceback, empty when all is well).
    """

    def __init__(self, results_dir: str | Path) -> None:
        import ipywidgets as w

        self.runs = explorer_runs(results_dir)
        if not self.runs:
            raise FileNotFoundError(f"no runs/*/seed*/{EXPLORER_FILE} under {results_dir}: "
                                    "evaluate a run first (multiad run / make reproduce)")
        self.data: ExplorerData | None = None
        self._quiet = False
        self._loaded: OrderedDict[str, ExplorerData] = OrderedDict()
        self._ranges: dict[tuple[str, str], tuple[float, float]] = {}
        self._thresholds: dict[tuple[str, str], float] = {}
        several = len({r.method for r in self.runs}) > 1
        style = {"description_width": "64px"}
        self.dataset = w.Dropdown(options=_unique([r.dataset for r in self.runs]),
                                  description="dataset", style=style,
                                  layout={"width": "300px"})
        self.method = w.Dropdown(description="method", style=style, layout={"width": "240px"},
                                 disabled=not several)
        self.run = w.Dropdown(options=[(r.label(several), str(r.path)) for r in self.runs],
                              description="run", style=style, layout={"width": "360px"})
        self.image = w.Dropdown(description="image", style=style, layout={"width": "600px"})
        self.prev = w.Button(description="◀", tooltip="previous image", layout={"width": "40px"})
        self.next = w.Button(description="▶", tooltip="next image", layout={"width": "40px"})
        self.map_choice = w.ToggleButtons(options=list(MAP_NAMES), value="fused",
                                          description="map",
                                          style={**style, "button_width": "72px"})
        self.threshold = w.FloatSlider(description="threshold", readout_format=".4g",
                                       continuous_update=False, style=style,
                                       layout={"width": "420px"})
        self.opacity = w.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.05, style=style,
                                     description="opacity", continuous_update=False)
        self.stats = w.HTML()
        self.error = w.HTML()
        self.view = w.Image(format="png", layout={"max_width": "100%", "height": "auto"})
        self.ui = w.VBox([w.HBox([self.dataset, self.method, self.run]),
                          w.HBox([self.image, self.prev, self.next]), self.map_choice,
                          w.HBox([self.threshold, self.opacity]), self.stats, self.error,
                          self.view])
        self._tag()
        self._wire()
        self._on_run()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.ui._repr_mimebundle_(**kwargs)

    def _tag(self) -> None:
        """CSS classes ``multiad-<control>`` (stable hooks for a browser)."""
        for name in ("dataset", "method", "run", "image", "prev", "next", "map_choice",
                     "threshold", "opacity", "stats", "error", "view"):
            getattr(self, name).add_class(f"{CSS}-{name.replace('_choice', '')}")
        self.ui.add_class(f"{CSS}-explorer")

    def _wire(self) -> None:
        """Observers: every one guarded (``_guard``)."""
        self.dataset.observe(self._guard(self._on_dataset), names="value")
        self.method.observe(self._guard(self._on_method), names="value")
        self.run.observe(self._guard(self._on_run), names="value")
        self.map_choice.observe(self._guard(self._reset_threshold), names="value")
        for ctl in (self.image, self.threshold, self.opacity):
            ctl.observe(self._guard(self.render), names="value")
        self.prev.on_click(self._guard(lambda: self.step_image(-1)))
        self.next.on_click(self._guard(lambda: self.step_image(1)))

    def _guard(self, fn: Callable[[], None]) -> Callable[..., None]:
        """``fn`` as a callback that shows its traceback in ``error`` (and re-raises)."""
        def callback(*_: Any) -> None:
            try:
                fn()
            except Exception:
                self.error.value = (
                    '<pre style="color:#b00020;white-space:pre-wrap">The explorer failed: '
                    f"{html.escape(traceback.format_exc())}</pre>")
                raise
            if self.error.value:
                self.error.value = ""
        return callback

    # -- pickers ---------------------------------------------------------------------------

    def entry(self) -> RunEntry:
        """The run now shown."""
        return next(r for r in self.runs if str(r.path) == self.run.value)

    def _on_dataset(self) -> None:
        if not self._quiet:
            cur = self.entry()
            self.run.value = str(pick_run(self.runs, self.dataset.value, cur.method,
                                          cur.seed).path)

    def _on_method(self) -> None:
        if not self._quiet and self.method.value is not None:
            cur = self.entry()
            self.run.value = str(pick_run(self.runs, cur.dataset, self.method.value,
                                          cur.seed).path)

    def _on_run(self) -> None:
        """Show the run in ``run``: dataset and method follow it, its images load."""
        cur = self.entry()
        self._quiet = True
        try:
            self.dataset.value = cur.dataset
            self.method.options = _unique([r.method for r in self.runs
                                           if r.dataset == cur.dataset])
            self.method.value = cur.method
        finally:
            self._quiet = False
        self._load_run()

    def _load(self, path: str) -> ExplorerData:
        """The run's data, from a small cache of recently shown runs."""
        if path not in self._loaded:
            self._loaded[path] = load_explorer_data(path)
            while len(self._loaded) > MAX_LOADED:
                self._loaded.popitem(last=False)
        self._loaded.move_to_end(path)
        return self._loaded[path]

    def _load_run(self) -> None:
        self.data = self._load(self.run.value)
        self._quiet = True
        try:
            self.image.options = [(self.data.caption(i), i) for i in range(len(self.data))]
            self.image.value = 0 if len(self.data) else None
            names = self.data.map_names  # the run's method's maps (Multi-AD: fused, M1–M4)
            if list(self.map_choice.options) != names:
                self.map_choice.options = names
            if self.map_choice.value not in names:
                self.map_choice.value = "fused"
        finally:
            self._quiet = False
        self._reset_threshold()

    def step_image(self, delta: int) -> None:
        """Show the image ``delta`` places on (wrapping around)."""
        if self.data is not None and len(self.data) and self.image.value is not None:
            self.image.value = (int(self.image.value) + delta) % len(self.data)

    # -- threshold and drawing -----------------------------------------------------------------

    def display_range(self, name: str) -> tuple[float, float]:
        """Colour range of map ``name`` over the run (``display_range``), cached."""
        assert self.data is not None
        key = (self.data.source, name)
        if key not in self._ranges:
            self._ranges[key] = display_range(self.data.map(name))
        return self._ranges[key]

    def default_threshold(self, name: str) -> float:
        """The 99% quantile of map ``name`` over the normal images (midpoint without any)."""
        assert self.data is not None
        key = (self.data.source, name)
        if key not in self._thresholds:
            normal = self.data.labels == 0
            lo, hi = self.data.vmin[name], self.data.vmax[name]
            self._thresholds[key] = (float(np.quantile(self.data.map(name)[normal], 0.99))
                                     if normal.any() else (lo + hi) / 2)
        return self._thresholds[key]

    def _reset_threshold(self) -> None:
        assert self.data is not None
        name = self.map_choice.value
        lo, hi = self.data.vmin[name], self.data.vmax[name]
        stp = self.data.step(name) or 1e-6
        self._quiet = True
        try:  # widen first so that min/max/value never conflict
            self.threshold.min, self.threshold.max = min(lo, self.threshold.min), max(
                hi + stp, self.threshold.max)
            self.threshold.step = stp
            self.threshold.value = self.default_threshold(name)
            self.threshold.min, self.threshold.max = lo, hi + stp
        finally:
            self._quiet = False
        self.render()

    def render(self) -> None:
        """Redraw ``view`` and ``stats`` from the current control values."""
        if self._quiet or self.data is None or self.image.value is None:
            return
        d, i, name = self.data, int(self.image.value), self.map_choice.value
        heat = d.map(name)[i]
        lo, hi = self.display_range(name)
        png, s = _render_png(d.images[i], d.masks[i], heat, lo, hi, float(self.threshold.value),
                             float(self.opacity.value), name)
        self.view.value = png
        self.stats.value = _stats_html(d, i, name, heat, s)


def widget_explorer(results_dir: str | Path) -> ExplorerUI:
    """The live heatmap explorer for JupyterLab over every run of ``results_dir``.

    ``widget_explorer("results/demo")`` as the last line of a cell shows it (``make lab``
    opens a notebook that does this). It needs a running kernel (the pictures are drawn by
    Python callbacks): in the static book its outputs would stay frozen, so the book uses
    ``multiad.pipeline.explore.plotly_explorer`` instead.
    """
    return ExplorerUI(results_dir)
