"""What the teaching page (``book/templates/walkthrough.ipynb``) measures and draws: Multi-AD
followed through its own modules, on real tensors. Nothing here is a second implementation:
every number comes from the package's teacher, student, discriminator and MFF.

- :func:`stage_shapes` / :func:`architecture_figure`: Figs. 2–3 redrawn from the modules'
  own tensor shapes;
- :func:`pca_rgb`: a feature map's three main channel directions as colours;
- :func:`effective_receptive_field`: |∂ output cell / ∂ input| of one stage (Eq. 1's point);
- :func:`se_weights`: the channel factors s of Eq. 3 of every SE block, per image;
- :func:`short_training`: Algorithm 1 step by step, recording L_G, L_adv, L_D, λ, D's
  output on T's and S's features and the per-stage distance on held-out normal images.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from multiad.methods.multiad.loss import l2_normalize
from multiad.methods.multiad.se import SqueezeExcitation


@dataclass
class StageShapes:
    """Shapes (C, H, W) of one input's tensors at each stage."""

    teacher: list[tuple[int, ...]]
    trunk: list[tuple[int, ...]]  # the student's own stage outputs
    distilled: list[tuple[int, ...]]  # what S offers for distillation (after Eq. 5)
    dilation: list[int]
    se: bool
    fusion: bool


@torch.no_grad()
def stage_shapes(model: nn.Module, x: torch.Tensor, cfg: Any) -> StageShapes:
    """Run ``model`` (a :class:`~multiad.methods.multiad.torch_model.MultiADModel`) on one
    batch and read every stage's shape."""
    t = model.teacher(x)
    trunk = model.student.trunk(x)
    s = model.student(x)
    return StageShapes([tuple(f.shape[1:]) for f in t], [tuple(f.shape[1:]) for f in trunk],
                       [tuple(f.shape[1:]) for f in s], list(cfg.dilation_rates), cfg.se,
                       cfg.fusion)


def architecture_figure(shapes: StageShapes, image_size: int, d_stages: tuple[int, ...],
                        backbone: str) -> Any:
    """Figs. 2–3 redrawn: frozen T and trainable S stage by stage, the Eq. 5 heads, D on
    the stages it sees, the maps M1–M4, Ψ, the sum, the Gaussian and the score. Shapes are
    the modules' own for this input size."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    n = len(shapes.teacher)
    fig, ax = plt.subplots(figsize=(12, 5.2))
    ax.set_xlim(0, 12.4)
    ax.set_ylim(0, 6.2)
    ax.axis("off")

    def box(x: float, y: float, w: float, h: float, text: str, colour: str) -> None:
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.04", fc=colour,
                                    ec="0.3", lw=0.8))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=7.5)

    def arrow(a: tuple[float, float], b: tuple[float, float], style: str = "-|>",
              colour: str = "0.35") -> None:
        ax.add_patch(FancyArrowPatch(a, b, arrowstyle=style, mutation_scale=8, color=colour,
                                     lw=0.8))

    def fmt(s: tuple[int, ...]) -> str:
        return "×".join(str(v) for v in s)

    # rows, top to bottom: T, the maps, the fusion heads, S (S feeds its heads upwards)
    y_t, y_m, y_f, y_s = 4.9, 3.55, 2.2, 0.6
    box(0.1, 2.7, 1.2, 1.0, f"image\n3×{image_size}×{image_size}", "#eeeeee")
    arrow((1.3, 3.5), (1.8, y_t + 0.5))
    arrow((1.3, 2.9), (1.8, y_s + 0.5))
    for k in range(n):
        x = 1.8 + 1.75 * k
        box(x, y_t, 1.5, 1.0, f"T stage {k + 1}\n{fmt(shapes.teacher[k])}\nfrozen", "#dbe9f6")
        extra = (f"SE · dilation {shapes.dilation[k]}" if shapes.se
                 else f"dilation {shapes.dilation[k]}")
        box(x, y_s, 1.5, 1.0, f"S stage {k + 1}\n{fmt(shapes.trunk[k])}\n{extra}", "#fde6cf")
        box(x + 0.2, y_m, 1.1, 0.8, f"M{k + 1} = 1 − cos\n(Eq. 13)", "#e3f1df")
        arrow((x + 0.75, y_t), (x + 0.75, y_m + 0.8))
        if shapes.fusion and k > 0:
            box(x + 0.15, y_f, 1.2, 0.8, f"Eq. 5 fusion\n→ {fmt(shapes.distilled[k])}",
                "#fff4c2")
            arrow((x - 0.25, y_s + 0.8), (x + 0.3, y_f))  # the previous stage, pooled
            arrow((x + 0.75, y_s + 1.0), (x + 0.75, y_f))
            arrow((x + 0.75, y_f + 0.8), (x + 0.75, y_m))
        else:
            arrow((x + 0.75, y_s + 1.0), (x + 0.75, y_m))
        if k:
            arrow((x - 0.25, y_t + 0.5), (x, y_t + 0.5))
            arrow((x - 0.25, y_s + 0.5), (x, y_s + 0.5))
    xr = 1.8 + 1.75 * n
    box(xr, y_m, 1.5, 0.8, "Ψ per scale, ↑, Σ\n(Eq. 14, MFF)", "#e3f1df")
    box(xr, y_t, 1.5, 1.0, "Gaussian σ\nmax → score φ\n(Eq. 15)", "#e3f1df")
    arrow((xr - 0.45, y_m + 0.4), (xr, y_m + 0.4))
    ax.text(xr - 0.22, y_m + 0.55, "M1…M4", ha="center", fontsize=6.5)
    arrow((xr + 0.75, y_m + 0.8), (xr + 0.75, y_t))
    for s in d_stages:
        box(xr, y_f - 0.3, 1.5, 1.1, f"D on stage {s}\nT: real, S: fake\n(Fig. 3, training)",
            "#f6d5d5")
        src_x = 1.8 + 1.75 * (s - 1) + (1.35 if shapes.fusion and s > 1 else 1.5)
        src_y = y_f + 0.4 if shapes.fusion and s > 1 else y_s + 0.5
        arrow((src_x, src_y), (xr, y_f + 0.25), colour="#b00020")
        arrow((1.8 + 1.75 * (s - 1) + 1.5, y_t + 0.3), (xr, y_f + 0.6), colour="#b00020")
    ax.set_title(f"Multi-AD as built here ({backbone} teacher, {image_size}×{image_size}): "
                 "shapes are C×H×W of one image", fontsize=9)
    return fig


@dataclass(frozen=True)
class Projection:
    """Three principal channel directions of one feature map and its range along them."""

    mean: torch.Tensor  # C
    basis: torch.Tensor  # 3×C
    lo: torch.Tensor  # 3
    hi: torch.Tensor  # 3


def pca_rgb(feat: torch.Tensor, proj: Projection | None = None
            ) -> tuple[np.ndarray, Projection]:
    """An H×W×3 picture of a C×H×W feature map: its projection on three principal channel
    directions, scaled to [0, 1]. With ``proj`` (from another map, e.g. the teacher's on a
    normal image) the same directions and scale are used, so colours compare across
    panels (values outside that range are clipped). Returns the picture and the
    projection."""
    f = feat.detach().float().flatten(1).T  # HW × C
    if proj is None:
        mean = f.mean(0)
        _, _, v = torch.linalg.svd(f - mean, full_matrices=False)
        p = (f - mean) @ v[:3].T
        proj = Projection(mean, v[:3], p.amin(0), p.amax(0))
    p = (f - proj.mean) @ proj.basis.T
    p = ((p - proj.lo) / (proj.hi - proj.lo).clamp_min(1e-12)).clamp(0, 1)
    return p.T.reshape(3, *feat.shape[-2:]).permute(1, 2, 0).numpy(), proj


def effective_receptive_field(student: nn.Module, stage: int, size: int, n: int = 4
                              ) -> np.ndarray:
    """|∂ (sum over channels of the centre cell of ``stage``'s trunk output) / ∂ input|,
    summed over colour channels and averaged over ``n`` random-noise inputs (seeded; a
    constant input would sit on the ReLUs' kinks): the pixels that cell can see and how
    much (H×W, scaled to a maximum of 1). Uses the student as it is (eval mode)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, size, size, generator=g).requires_grad_(True)
    out = student.trunk(x)[stage - 1]
    h, w = out.shape[-2:]
    out[:, :, h // 2, w // 2].sum().backward()
    grad = x.grad.abs().sum(1).mean(0)
    return (grad / grad.max().clamp_min(1e-30)).numpy()


@torch.no_grad()
def se_weights(student: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """The factors s (Eq. 3) of every SE block of the student for a batch, in order: a list
    of N×C tensors (empty without SE)."""
    found: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda mod, inp, _out: found.append(mod.scale(inp[0])))
             for m in student.modules() if isinstance(m, SqueezeExcitation)]
    try:
        student.trunk(x)
    finally:
        for h in hooks:
            h.remove()
    return found


@dataclass
class TrainingTrace:
    """Per step of a short Algorithm 1 run."""

    losses: dict[str, list[float]] = field(default_factory=dict)
    d_real: list[float] = field(default_factory=list)  # D(T) averaged over the batch
    d_fake: list[float] = field(default_factory=list)  # D(S)
    stage_distance: list[list[float]] = field(default_factory=list)  # mean M_n, held-out


def short_training(trainer: Any, images: torch.Tensor, held_out: torch.Tensor, steps: int,
                   batch_size: int, every: int = 5) -> TrainingTrace:
    """``steps`` of ``trainer.step`` (Algorithm 1) on random batches of ``images``, recording
    its losses, D's output on T's and S's stage features (before each step, eval mode),
    and every ``every`` steps the mean per-stage distance M_n on ``held_out`` normals."""
    trace = TrainingTrace()
    g = torch.Generator().manual_seed(0)
    model = trainer.model
    for step in range(steps):
        idx = torch.randperm(len(images), generator=g)[:batch_size]
        x = trainer.prepare(images[idx])
        if trainer.discriminators:
            key, disc = next(iter(trainer.discriminators.items()))
            with torch.no_grad():
                disc.eval()
                model.student.eval()
                t, s = model(x)
                n = int(key) - 1
                trace.d_real.append(float(disc.probability(l2_normalize(t[n])).mean()))
                trace.d_fake.append(float(disc.probability(l2_normalize(s[n])).mean()))
        out = trainer.step(x)
        for k, v in out.items():
            trace.losses.setdefault(k, []).append(float(v))
        if step % every == 0 or step == steps - 1:
            model.student.eval()
            with torch.no_grad():
                maps = model.maps(trainer.prepare(held_out))
            trace.stage_distance.append([float(m.mean()) for m in maps])
    return trace
