"""The heatmap explorer: its data file, the book's plotly figure and the JupyterLab widget."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from multiad.explorer_data import (
    LAYER_NAMES,
    MAP_NAMES,
    find_explorer_runs,
    load_explorer_data,
    row_delta,
    row_undelta,
    save_explorer_data,
    select_subset,
)
from multiad.pipeline.explore import (
    BOOK_PLOTLYJS,
    CDN_MARKERS,
    book_explorers,
    explorer_html,
    explorer_summary,
    plotly_explorer,
    run_title,
)

REPO = Path(__file__).resolve().parents[1]
H = W = 16
NATIVE = [(8, 8), (4, 4), (2, 2), (1, 1)]
DEFECTS = ["good"] * 6 + ["crack"] * 3 + ["hole"] * 4 + ["stain"]


def _split(seed: int = 0) -> dict:
    """A small synthetic test split with everything ``save_explorer_data`` takes."""
    rng = np.random.default_rng(seed)
    n = len(DEFECTS)
    labels = np.array([d != "good" for d in DEFECTS], dtype=np.int64)
    masks = np.zeros((n, H, W), bool)
    masks[labels == 1, 4:9, 5:11] = True
    layer_maps = [rng.random((n, h, w)).astype(np.float32) * (k + 1)
                  for k, (h, w) in enumerate(NATIVE)]
    smoothed = (rng.random((n, H, W)) * 3 + 0.5).astype(np.float32)
    scores = smoothed.reshape(n, -1).max(axis=1)
    return {"images_rgb_u8": rng.integers(0, 256, (n, H, W, 3), dtype=np.uint8),
            "masks": masks, "layer_maps": layer_maps, "smoothed": smoothed,
            "scores": scores, "labels": labels, "defects": list(DEFECTS),
            "paths": [f"test/{d}/{i:03d}.png" for i, d in enumerate(DEFECTS)]}


@pytest.fixture()
def results(tmp_path: Path) -> Path:
    """A results folder with two runs that have an explorer.npz (one with metrics.json)."""
    for k, ds in enumerate(("set-a", "set-b")):
        run = tmp_path / "runs" / ds / "seed0"
        save_explorer_data(run / "explorer.npz", **_split(k))
    (tmp_path / "runs" / "set-a" / "seed0" / "metrics.json").write_text(
        json.dumps({"teacher": {"kind": "random"}}))
    return tmp_path


def test_row_delta_is_lossless() -> None:
    a = np.random.default_rng(1).integers(0, 256, (3, 5, 7, 3), dtype=np.uint8)
    assert np.array_equal(row_undelta(row_delta(a)), a)
    assert np.array_equal(row_undelta(row_delta(a[..., 0])), a[..., 0])


def test_subset_rule() -> None:
    sp = _split()
    scores, labels = sp["scores"], sp["labels"]
    idx = select_subset(scores, labels, DEFECTS, max_images=24)
    assert len(idx) == len(set(idx))
    for d in ("crack", "hole", "stain"):  # every defect type: its highest and median image
        members = sorted((i for i, x in enumerate(DEFECTS) if x == d), key=lambda i: scores[i])
        assert members[-1] in idx and members[(len(members) - 1) // 2] in idx
    normal = [i for i in range(len(DEFECTS)) if labels[i] == 0]
    assert max(normal, key=lambda i: scores[i]) in idx
    assert min(normal, key=lambda i: scores[i]) in idx
    assert len(idx) == 3 + 2 + 2  # "stain" has one image: its highest is its median
    # display order: defect types by name, then the normal images
    kinds = [DEFECTS[i] for i in idx]
    assert kinds == sorted(kinds[:-2]) + ["good", "good"]
    # capped: the highest image of every type first, then the normal images
    capped = select_subset(scores, labels, DEFECTS, max_images=4)
    assert len(capped) == 4
    assert {DEFECTS[i] for i in capped} == {"crack", "hole", "stain", "good"}


def test_save_load_round_trip(tmp_path: Path) -> None:
    sp = _split()
    path = save_explorer_data(tmp_path / "run" / "explorer.npz", **sp)
    assert path.exists() and not list(path.parent.glob(".*.tmp"))  # atomic: no leftovers
    d = load_explorer_data(path.parent)  # a run folder works as well as the file
    idx = select_subset(sp["scores"], sp["labels"], DEFECTS)
    assert len(d) == len(idx) and d.index.tolist() == idx
    assert {"crack", "hole", "stain", "good"} <= set(d.defects)
    assert d.size == (H, W) and d.source_size == (H, W) and d.layer_shapes == NATIVE
    np.testing.assert_array_equal(d.images, sp["images_rgb_u8"][idx])
    np.testing.assert_array_equal(d.masks, sp["masks"][idx])
    np.testing.assert_allclose(d.scores, sp["scores"][idx])
    assert d.paths == [sp["paths"][i] for i in idx] and d.labels.tolist() == [
        int(sp["labels"][i]) for i in idx]
    assert "highest" in d.rule and "median" in d.rule
    # dequantised values within one quantisation step of the input
    fused = d.map("fused")
    assert fused.dtype == np.float32 and fused.shape == (len(idx), H, W)
    assert np.abs(fused - sp["smoothed"][idx]).max() <= d.step("fused") * 0.5 + 1e-6
    import torch
    import torch.nn.functional as F

    for name, m in zip(LAYER_NAMES, sp["layer_maps"], strict=True):
        up = F.interpolate(torch.from_numpy(m[idx])[:, None], size=(H, W), mode="bilinear",
                           align_corners=False)[:, 0].numpy()
        assert d.codes[name].dtype == np.uint8
        assert np.abs(d.map(name) - up).max() <= d.step(name) * 0.5 + 1e-6
        assert d.vmin[name] == pytest.approx(float(up.min()), rel=1e-6)
        assert d.vmax[name] == pytest.approx(float(up.max()), rel=1e-6)


def test_save_downsamples_and_accepts_channel_axes(tmp_path: Path) -> None:
    sp = _split()
    sp["layer_maps"] = [m[:, None] for m in sp["layer_maps"]]  # N×1×h×w
    d = load_explorer_data(save_explorer_data(tmp_path / "e.npz", **sp, max_size=8,
                                              max_images=5))
    assert len(d) == 5 and d.size == (8, 8) and d.source_size == (H, W)
    assert d.images.dtype == np.uint8 and d.masks.dtype == bool and d.masks.any()
    with pytest.raises(ValueError, match="layer maps"):
        save_explorer_data(tmp_path / "bad.npz", **{**sp, "layer_maps": sp["layer_maps"][:3]})


def test_plotly_figure(results: Path) -> None:
    d = load_explorer_data(results / "runs" / "set-a" / "seed0")
    fig = plotly_explorer(d, title="set-a")
    assert len(fig.frames) == len(d)
    assert len(fig.layout.sliders[0].steps) == len(d)
    kinds = [t.type for t in fig.data]
    assert kinds == ["image", "image", "heatmap", "image"] + ["heatmap"] * 4
    fused = fig.data[2]
    assert "%{z" in fused.hovertemplate and "%{customdata}" in fused.hovertemplate
    np.testing.assert_array_equal(np.asarray(fused.customdata), d.masks[0].astype(np.uint8))
    np.testing.assert_allclose(np.asarray(fused.z), d.map("fused")[0])  # dequantised values
    for t, (h, w) in zip(fig.data[4:], NATIVE, strict=True):  # layer maps on native grids
        assert np.asarray(t.z).shape == (h, w) and "%{z" in t.hovertemplate
    last = fig.frames[-1]
    np.testing.assert_allclose(np.asarray(last.data[2].z), d.map("fused")[-1])
    assert d.defects[-1] in last.layout.title.text
    # without the layer maps: one row
    assert len(plotly_explorer(d, layers=False).data) == 4


def test_html_has_no_cdn_and_is_compact(results: Path) -> None:
    d = load_explorer_data(results / "runs" / "set-a" / "seed0")
    fig = plotly_explorer(d, title="set-a")
    page = explorer_html(fig)
    srcs = re.findall(r'<script[^>]*src="([^"]+)"', page)
    assert srcs == [BOOK_PLOTLYJS]
    assert not any(m in page for m in CDN_MARKERS)
    assert not re.search(r"https?://", page)
    assert 'class="plotly-graph-div"' in page and "Plotly.addFrames" in page
    assert "Plotly.animate" not in page  # no autoplay through the frames
    assert not re.findall(r"<script[^>]*src=", explorer_html(fig, plotlyjs=None))
    with pytest.raises(ValueError):
        explorer_html(fig, plotlyjs="https://cdn.plot.ly/plotly-3.0.0.min.js")
    # heatmaps travel as uint8 codes that dequantise to the figure's values
    blob = re.search(r"var data=(\[.*?\]);var layout=", page).group(1)
    data = json.loads(blob)
    z = data[2]["z"]
    assert z["dtype"] == "u1"
    import base64

    codes = np.frombuffer(base64.b64decode(z["bdata"]), np.uint8).reshape(H, W)
    vmin, step = data[2]["meta"]["dequant"]
    np.testing.assert_allclose(vmin + codes * step, d.map("fused")[0], atol=step * 0.51)
    gt = data[2]["customdata"]  # ground truth bit-packed
    bits = np.unpackbits(np.frombuffer(base64.b64decode(gt["bdata"]), np.uint8))[:H * W]
    np.testing.assert_array_equal(bits.reshape(gt["bits"]), d.masks[0])
    assert len(explorer_html(fig, compact=False)) > len(page)


def test_book_helpers(results: Path, tmp_path: Path) -> None:
    assert [p.parent.name for p in find_explorer_runs(results)] == ["set-a", "set-b"]
    assert run_title(results / "runs" / "set-a" / "seed0", "demo") == (
        "set-a · seed0 · profile demo · teacher wide_resnet50_2 (random)")
    assert run_title(results / "runs" / "set-b" / "seed0").endswith("teacher unknown")
    items = book_explorers(results, "demo", max_runs=1)
    assert len(items) == 1 and "plotly.min.js" in items[0][1]
    items = book_explorers(results, "demo", max_runs=4)
    assert len(items) == 2 and "plotly.min.js" not in items[1][1]  # loaded once per page
    assert "2 evaluated run(s)" in explorer_summary(results, 2)
    assert "No run" in explorer_summary(tmp_path / "empty", 0)


def test_vendored_plotlyjs_matches_plotly() -> None:
    """book/vendor/plotly holds the plotly.js that the installed plotly writes figures for."""
    from plotly.offline import get_plotlyjs_version

    vendored = REPO / "book" / "vendor" / "plotly" / "plotly.min.js"
    head = vendored.read_text(encoding="utf-8", errors="replace")[:300]
    version = re.search(r"plotly\.js v(\d+)\.(\d+)\.(\d+)", head)
    assert version, "no version header in the vendored plotly.min.js"
    assert version.group(1) == get_plotlyjs_version().split(".")[0], (
        "vendored plotly.js and the installed plotly differ in major version: copy "
        "plotly/package_data/plotly.min.js into book/vendor/plotly/ again")


def test_widget_explorer_reacts(results: Path) -> None:
    pytest.importorskip("ipywidgets")
    from multiad.pipeline.explore_widgets import widget_explorer

    ui = widget_explorer(results)  # no display, no kernel
    assert len(ui.run.options) == 2 and len(ui.image.options) == len(ui.data)
    assert list(ui.map_choice.options) == list(MAP_NAMES)
    first_png, first_stats = ui.view.value, ui.stats.value
    assert first_png[:8] == b"\x89PNG\r\n\x1a\n" and "IoU" in first_stats
    ui.image.value = ui.data.labels.tolist().index(1)  # an anomalous image
    before_png, before_stats = ui.view.value, ui.stats.value
    ui.threshold.value = ui.threshold.min  # everything above: recall 1
    assert ui.view.value != before_png and ui.stats.value != before_stats
    assert "recall 1.000" in ui.stats.value
    ui.map_choice.value = "M2"  # a new map: the threshold moves to that map's scale
    assert ui.threshold.max == pytest.approx(ui.data.vmax["M2"] + ui.data.step("M2"))
    assert ui.threshold.min == pytest.approx(ui.data.vmin["M2"])
    png = ui.view.value
    ui.opacity.value = 0.9
    assert ui.view.value != png
    ui.run.value = ui.run.options[1][1]
    assert ui.data is not None and Path(ui.data.source).parent.parent.name == "set-b"
    assert ui._repr_mimebundle_()  # displays as its widget box


@pytest.fixture()
def multi_results(results: Path) -> Path:
    """``results`` plus a second method's run of set-a (``config.method`` in metrics.json)."""
    run = results / "runs" / "set-a" / "seed1"
    save_explorer_data(run / "explorer.npz", **_split(2))
    (run / "metrics.json").write_text(json.dumps({"config": {"method": "other"}}))
    return results


def test_run_method_and_runs(multi_results: Path) -> None:
    pytest.importorskip("ipywidgets")
    from multiad.pipeline.explore_widgets import DEFAULT_METHOD, explorer_runs, pick_run, run_method

    runs = explorer_runs(multi_results)
    assert [(r.dataset, r.method, r.seed) for r in runs] == [
        ("set-a", DEFAULT_METHOD, "seed0"), ("set-a", "other", "seed1"),
        ("set-b", DEFAULT_METHOD, "seed0")]
    assert runs[1].label(True) == "set-a / other / seed1" and runs[0].label() == "set-a / seed0"
    top = multi_results / "runs" / "set-b" / "seed0"
    (top / "metrics.json").write_text(json.dumps({"method": "top-level"}))
    assert run_method(top) == "top-level"
    (top / "metrics.json").write_text("not json")
    assert run_method(top) == DEFAULT_METHOD
    assert pick_run(runs, "set-a", "other", "seed0") == runs[1]  # same method beats same seed
    assert pick_run(runs, "set-b", "other", "seed1") == runs[2]  # what set-b has
    with pytest.raises(KeyError):
        pick_run(runs, "nowhere")


def test_widget_pickers_follow_each_other(multi_results: Path) -> None:
    pytest.importorskip("ipywidgets")
    from multiad.pipeline.explore_widgets import widget_explorer

    ui = widget_explorer(multi_results)
    assert list(ui.dataset.options) == ["set-a", "set-b"]
    assert not ui.method.disabled and list(ui.method.options) == ["multiad", "other"]
    assert [label for label, _ in ui.run.options][1] == "set-a / other / seed1"
    png = ui.view.value
    ui.method.value = "other"  # the method picks that method's run of the dataset
    assert ui.entry().seed == "seed1" and ui.view.value != png
    ui.dataset.value = "set-b"  # set-b has only multiad: the method follows
    assert ui.entry().dataset == "set-b" and list(ui.method.options) == ["multiad"]
    assert ui.method.value == "multiad" and Path(ui.data.source).parent.parent.name == "set-b"
    ui.run.value = ui.run.options[1][1]  # the run picker moves dataset and method
    assert (ui.dataset.value, ui.method.value) == ("set-a", "other")


def test_widget_steps_tags_and_shows_errors(results: Path, monkeypatch) -> None:
    pytest.importorskip("ipywidgets")
    import multiad.pipeline.explore_widgets as ew
    from multiad.pipeline.explore_widgets import ExplorerUI, widget_explorer

    ui = widget_explorer(results)
    assert isinstance(ui, ExplorerUI) and ui.method.disabled  # one method: shown, fixed
    assert [label for label, _ in ui.run.options] == ["set-a / seed0", "set-b / seed0"]
    n = len(ui.data)
    ui.prev.click()  # wraps around
    assert ui.image.value == n - 1 and f"image {n}/{n}" in ui.stats.value
    ui.next.click()
    assert ui.image.value == 0
    stats = ui.stats.value  # score and label first
    assert re.search(r"score [\d.]+</b> · label <b[^>]*>(normal|anomalous)", stats)
    assert "multiad-view" in ui.view._dom_classes and "multiad-explorer" in ui.ui._dom_classes
    assert "multiad-map" in ui.map_choice._dom_classes
    assert "multiad-threshold" in ui.threshold._dom_classes and ui.error.value == ""

    def broken(*_args, **_kwargs):
        raise RuntimeError("drawing failed")

    monkeypatch.setattr(ew, "_render_png", broken)
    with pytest.raises(RuntimeError, match="drawing failed"):  # a failing observer raises
        ui.image.value = 1
    assert "Traceback" in ui.error.value and "drawing failed" in ui.error.value
    ui.error.value = ""
    ui.next.click()  # ipywidgets reports a button's exception itself; the widget shows it
    assert "Traceback" in ui.error.value and "drawing failed" in ui.error.value
    monkeypatch.undo()
    ui.next.click()
    assert ui.error.value == ""  # the next good redraw clears it


def test_widget_responsive_at_demo_size(tmp_path: Path) -> None:
    """The demo profile's largest run (256×256, 46 test images; 24 kept) redraws quickly."""
    pytest.importorskip("ipywidgets")
    import time

    from multiad.pipeline.explore_widgets import widget_explorer

    n, size = 46, 256
    rng = np.random.default_rng(0)
    defects = ["good"] * 16 + [f"type{k:02d}" for k in range(15) for _ in range(2)]
    labels = np.array([d != "good" for d in defects], dtype=np.int64)
    masks = np.zeros((n, size, size), bool)
    masks[labels == 1, 90:150, 60:140] = True
    smoothed = (rng.random((n, size, size)) + masks * 2).astype(np.float32)
    layers = [rng.random((n, size // s, size // s)).astype(np.float32) for s in (4, 8, 16, 32)]
    for ds in ("big-a", "big-b"):
        save_explorer_data(tmp_path / "runs" / ds / "seed0" / "explorer.npz",
                           rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8), masks,
                           layers, smoothed, smoothed.reshape(n, -1).max(axis=1), labels,
                           defects, [f"{d}/{i}.png" for i, d in enumerate(defects)])
    ui = widget_explorer(tmp_path)
    assert len(ui.data) == 24 and ui.data.size == (size, size)
    changes = {"image": lambda: setattr(ui.image, "value", 7),
               "threshold": lambda: setattr(ui.threshold, "value", ui.threshold.min),
               "map": lambda: setattr(ui.map_choice, "value", "M1"),
               "opacity": lambda: setattr(ui.opacity, "value", 0.8),
               "run": lambda: setattr(ui.run, "value", ui.run.options[1][1]),
               "back": lambda: setattr(ui.run, "value", ui.run.options[0][1])}
    took = {}
    for name, change in changes.items():
        png = ui.view.value
        t0 = time.perf_counter()
        change()
        took[name] = time.perf_counter() - t0
        assert ui.view.value != png, name
    assert max(took.values()) < 2.0, took  # ~0.15-0.3 s each on one free core
    assert len(ui.view.value) < 2_000_000  # one picture per change, noise images included


def test_each_anomalous_image_shows_its_aupimo(tmp_path: Path) -> None:
    """The per-image view reads each image's AUPIMO from the run's metrics.json; normal
    images and runs without AUPIMO show none."""
    sp = _split()
    run = tmp_path / "run"
    save_explorer_data(run / "explorer.npz", **sp)
    assert load_explorer_data(run).aupimo is None  # no metrics.json: nothing shown
    values = [0.25 + i / 100 if lab else None for i, lab in enumerate(sp["labels"])]
    (run / "metrics.json").write_text(json.dumps({"metrics": {"aupimo_per_image": values}}))
    d = load_explorer_data(run)
    for i in range(len(d)):
        own = values[int(d.index[i])]
        if own is None:
            assert "AUPIMO" not in d.caption(i)
        else:
            assert f"AUPIMO {own:.3f}" in d.caption(i)
