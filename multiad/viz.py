"""Heatmap overlays and example grids (what a person looks at)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from multiad.atomic import atomic_path


def colorize(heat: np.ndarray, vmin: float, vmax: float, cmap: str = "jet") -> np.ndarray:
    """Map a H×W float array to H×W×3 uint8 with a colormap on [vmin, vmax]."""
    span = max(vmax - vmin, 1e-12)
    x = np.clip((heat.astype(np.float64) - vmin) / span, 0.0, 1.0)
    return (colormaps[cmap](x)[..., :3] * 255).round().astype(np.uint8)


def overlay(image: np.ndarray, heat: np.ndarray, vmin: float, vmax: float,
            alpha: float = 0.5) -> np.ndarray:
    """Blend a colorised heatmap over an H×W×3 uint8 image."""
    colour = colorize(heat, vmin, vmax).astype(np.float32)
    out = (1 - alpha) * image.astype(np.float32) + alpha * colour
    return out.round().clip(0, 255).astype(np.uint8)


def save_png(path: str | Path, rgb: np.ndarray) -> Path:
    """Write an H×W×3 uint8 array as PNG, atomically."""
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(rgb).save(tmp, format="PNG")
    return Path(path)


def example_grid(path: str | Path, images: Sequence[np.ndarray],
                 masks: Sequence[np.ndarray | None], maps: Sequence[np.ndarray],
                 titles: Sequence[str], vmin: float, vmax: float,
                 more: Sequence[tuple[str, Sequence[np.ndarray | None]]] = ()) -> Path:
    """Rows of image | ground truth | heatmap overlay (the layout of the paper's Figs. 6–8);
    ``more``: further (column title, one map per row, or None where there is none) columns,
    e.g. other methods' maps of the same images. All maps on [vmin, vmax]."""
    rows, cols = len(images), 3 + len(more)
    names = ["image", "ground truth", "anomaly map" if not more else "Multi-AD",
             *[name for name, _ in more]]
    fig = Figure(figsize=(2.5 * cols, 2.5 * rows))  # no pyplot: the caller's backend is left
    axes = fig.subplots(rows, cols, squeeze=False)
    for r, (img, mask, heat, title) in enumerate(zip(images, masks, maps, titles, strict=True)):
        axes[r, 0].imshow(img)
        axes[r, 0].set_ylabel(title, fontsize=8)
        axes[r, 1].imshow(np.zeros(img.shape[:2]) if mask is None else mask, cmap="gray",
                          vmin=0, vmax=1)
        axes[r, 2].imshow(overlay(img, heat, vmin, vmax))
        for c, (_, column) in enumerate(more, start=3):
            other = column[r]
            if other is None:
                axes[r, c].text(0.5, 0.5, "not run", ha="center", va="center", fontsize=8,
                                transform=axes[r, c].transAxes)
            else:
                axes[r, c].imshow(overlay(img, other, vmin, vmax))
        for c, name in enumerate(names):
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
            if r == 0:
                axes[r, c].set_title(name, fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return Path(path)
