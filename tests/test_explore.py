"""The heatmap explorer: its data file, the book's plotly figure and the JupyterLab widget."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from multiad.explore import (
    BOOK_PLOTLYJS,
    CDN_MARKERS,
    LAYER_NAMES,
    MAP_NAMES,
    book_explorers,
    explorer_html,
    explorer_summary,
    find_explorer_runs,
    load_explorer_data,
    plotly_explorer,
    row_delta,
    row_undelta,
    run_title,
    save_explorer_data,
    select_subset,
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
    from multiad.explore import widget_explorer

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
