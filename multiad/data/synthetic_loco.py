"""Synthetic logical constraints: a tray of four discs, in MVTec LOCO AD's own layout.

A normal image is a tray with exactly one disc in each of four slots (a 2×2 grid), the
top row red and the bottom row blue; positions, radii, colours, shading and lighting
vary. Like MVTec LOCO AD it has two kinds of anomaly:

- **logical** (``test/logical_anomalies``): every local patch may look normal but a rule
  is broken — ``missing_disc`` (a slot is empty; its region is where the disc belongs),
  ``swapped_colour`` (a disc has the other row's colour), ``extra_disc`` (a fifth disc
  between the slots); one logical image in four breaks two rules (two region files);
- **structural** (``test/structural_anomalies``): ``scratch`` (a dark curved line) and
  ``dent`` (a dark irregular blob), new local structure.

Each defect is one ground-truth PNG ``ground_truth/<type>/<stem>/00k.png`` holding the
defect's pixel value, listed with its sPRO saturation threshold in ``defects_config.json``
(``missing_disc``: an absolute threshold of half a disc's area at the generated size, as
LOCO does for missing objects; ``swapped_colour``: relative 0.5; the rest: relative 1).
:func:`multiad.data.synthetic.make_synthetic` ("loco") writes it atomically with its
manifest; :func:`multiad.data.mvtec_loco.load_mvtec_loco` reads it like the real set.
"""

from __future__ import annotations

import numpy as np

from .shapes import bezier_points, blob_alpha, grid, smooth_noise, smoothstep, stroke_alpha

LOGICAL_DEFECTS = ("missing_disc", "swapped_colour", "extra_disc")
STRUCTURAL_DEFECTS = ("scratch", "dent")
LOCO_DEFECTS = (*LOGICAL_DEFECTS, *STRUCTURAL_DEFECTS)
# pixel value of each defect in its region masks (as LOCO's masks carry theirs)
PIXEL_VALUES = {"missing_disc": 255, "swapped_colour": 254, "extra_disc": 253,
                "scratch": 252, "dent": 251}
_RADIUS = 0.11  # disc radius, a fraction of the image size
_SLOTS = ((0.3, 0.3), (0.3, 0.7), (0.7, 0.3), (0.7, 0.7))  # (y, x) fractions; rows 0,1
_RED = np.array([0.80, 0.22, 0.18], dtype=np.float32)
_BLUE = np.array([0.20, 0.35, 0.78], dtype=np.float32)
_TRAY = np.array([0.74, 0.71, 0.66], dtype=np.float32)
Broken = tuple[str, np.ndarray, int]  # (defect name, region mask, slot or -1)


def defects_config(size: int) -> list[dict]:
    """The ``defects_config.json`` entries of a set generated at ``size``×``size``."""
    half_disc = round(0.5 * np.pi * (_RADIUS * size) ** 2)
    rules = {"missing_disc": (half_disc, False), "swapped_colour": (0.5, True),
             "extra_disc": (1.0, True), "scratch": (1.0, True), "dent": (1.0, True)}
    return [{"defect_name": name, "pixel_value": PIXEL_VALUES[name],
             "saturation_threshold": rules[name][0], "relative_saturation": rules[name][1]}
            for name in LOCO_DEFECTS]


def _disc_alpha(size: int, centre: tuple[float, float], radius: float) -> np.ndarray:
    yy, xx = grid(size)
    dist = np.hypot(yy - centre[0], xx - centre[1])
    return smoothstep((radius - dist) / 1.5 + 0.5)


class _Scene:
    """One tray: slot centres, radii and colours drawn from ``rng``."""

    def __init__(self, rng: np.random.Generator, size: int) -> None:
        self.size = size
        jitter = rng.normal(0.0, 0.015 * size, (4, 2))
        self.centres = [(fy * size + jy, fx * size + jx)
                        for (fy, fx), (jy, jx) in zip(_SLOTS, jitter, strict=True)]
        self.radii = [_RADIUS * size * rng.uniform(0.95, 1.05) for _ in range(4)]
        self.colours = [(_RED if k < 2 else _BLUE) * (1 + rng.normal(0, 0.03, 3))
                        .astype(np.float32) for k in range(4)]
        self.present = [True] * 4
        self.extra: tuple[tuple[float, float], float, np.ndarray] | None = None
        self.light = 0.04 * smooth_noise(rng, (size, size), size / 3.0)
        self.grain = 0.02 * smooth_noise(rng, (size, size), 1.5)
        self.tray = _TRAY * (1 + rng.normal(0, 0.02, 3)).astype(np.float32)
        self.shade = rng.uniform(0.08, 0.14)

    def discs(self) -> list[tuple[tuple[float, float], float, np.ndarray]]:
        out = [(c, r, col) for c, r, col, on in zip(self.centres, self.radii, self.colours,
                                                    self.present, strict=True) if on]
        return out + ([self.extra] if self.extra is not None else [])

    def render(self) -> np.ndarray:
        """The scene as float32 size×size×3 in [0, 1]."""
        s = self.size
        img = np.broadcast_to(self.tray, (s, s, 3)).copy()
        yy, xx = grid(s)
        for (cy, cx), r, col in self.discs():
            alpha = _disc_alpha(s, (cy, cx), r)[..., None]
            # a soft highlight towards the top left: the discs look like objects
            d = np.hypot(yy - (cy - 0.35 * r), xx - (cx - 0.35 * r)) / r
            lit = col * (1 + self.shade * (1 - np.clip(d, 0, 1.6)))[..., None]
            img = img * (1 - alpha) + lit * alpha
        img = img + (self.light + self.grain)[..., None]
        return np.clip(img, 0.0, 1.0).astype(np.float32)


def _missing(rng: np.random.Generator, scene: _Scene, avoid: set[int]) -> Broken:
    k = int(rng.choice([i for i in range(4) if i not in avoid]))
    scene.present[k] = False
    return "missing_disc", _disc_alpha(scene.size, scene.centres[k], scene.radii[k]) > 0.5, k


def _swapped(rng: np.random.Generator, scene: _Scene, avoid: set[int]) -> Broken:
    k = int(rng.choice([i for i in range(4) if i not in avoid]))
    scene.colours[k] = (_BLUE if k < 2 else _RED) * (1 + rng.normal(0, 0.03, 3)).astype(
        np.float32)
    return "swapped_colour", _disc_alpha(scene.size, scene.centres[k], scene.radii[k]) > 0.5, k


def _extra(rng: np.random.Generator, scene: _Scene) -> Broken:
    s = scene.size
    centre = (s * 0.5 + rng.normal(0, 0.02 * s), s * 0.5 + rng.normal(0, 0.02 * s))
    r = _RADIUS * s * rng.uniform(0.7, 0.85)
    scene.extra = (centre, r, _RED if rng.random() < 0.5 else _BLUE)
    return "extra_disc", _disc_alpha(s, centre, r) > 0.5, -1


def _scratch(rng: np.random.Generator, img: np.ndarray, scene: _Scene) -> np.ndarray:
    s = scene.size
    cy, cx = scene.centres[int(rng.integers(4))]
    length = rng.uniform(0.15, 0.3) * s
    ang = rng.uniform(0, 2 * np.pi)
    p0 = np.array([cy, cx]) - 0.5 * length * np.array([np.sin(ang), np.cos(ang)])
    p2 = p0 + length * np.array([np.sin(ang), np.cos(ang)])
    p1 = (p0 + p2) / 2 + rng.uniform(-0.2, 0.2) * length * np.array([np.cos(ang), -np.sin(ang)])
    width = max(1.2, rng.uniform(1.5, 2.5) * s / 256.0)
    alpha = stroke_alpha(s, bezier_points(p0, p1, p2, int(length * 3) + 8), width, 0.8)
    img[:] = img * (1 - 0.6 * alpha)[..., None]
    return alpha > 0


def _dent(rng: np.random.Generator, img: np.ndarray, scene: _Scene) -> np.ndarray:
    s = scene.size
    radius = max(2.5, rng.uniform(0.03, 0.05) * s)
    centre = tuple(rng.uniform(0.15, 0.85, 2) * s)
    alpha = blob_alpha(rng, s, centre, radius, softness=max(1.0, radius * 0.3),
                       irregularity=0.35)
    img[:] = img * (1 - 0.55 * alpha)[..., None]
    return alpha > 0


def render_loco(rng: np.random.Generator, size: int, defect: str | None = None
                ) -> tuple[np.ndarray, list[tuple[str, np.ndarray]]]:
    """``(image, regions)``: float32 H×W×3 and one ``(defect name, bool mask)`` per
    ground-truth region (none for a normal image; ``defect`` names the first)."""
    scene = _Scene(rng, size)
    if defect is None or defect == "good":
        return scene.render(), []
    if defect not in LOCO_DEFECTS:
        raise ValueError(f"unknown synthetic LOCO defect {defect!r}; expected {LOCO_DEFECTS}")
    if defect in STRUCTURAL_DEFECTS:
        img = scene.render()
        mask = (_scratch if defect == "scratch" else _dent)(rng, img, scene)
        return np.clip(img, 0.0, 1.0).astype(np.float32), [(defect, mask)]
    regions = []
    if defect == "extra_disc":
        name, mask, _ = _extra(rng, scene)
        regions.append((name, mask))
    else:
        name, mask, k = (_missing if defect == "missing_disc" else _swapped)(rng, scene, set())
        regions.append((name, mask))
        if rng.random() < 0.25:  # a second broken rule in another slot
            other = _swapped if defect == "missing_disc" else _missing
            name2, mask2, _ = other(rng, scene, {k})
            regions.append((name2, mask2))
    return scene.render(), regions
