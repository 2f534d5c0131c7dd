"""Training, Algorithm 1: per batch a D step (S frozen), then an S step (D frozen).

Adam (lr 1e-3) for S and D, batch 16, ``epochs`` epochs over the normal training images;
T is never updated. After the last epoch Ψ (MFF) is calibrated on the training maps.

A run lives in one folder: ``config.yaml``, ``checkpoint.pt`` (written atomically every
``checkpoint_every`` epochs, with optimiser and RNG states), ``losses.csv``, and at the end
``model.pt`` and ``train.json``. Re-running the same command resumes from the checkpoint
and gives the same weights as an uninterrupted run (same device, deterministic mode).
``train_many`` trains several runs at once (interleaved steps; on a GPU, one stream each).
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from multiad.anomaly_map import fuse_maps, image_score
from multiad.atomic import atomic_write, write_json
from multiad.backbones import resolve_auto_teacher
from multiad.config import EVAL_ONLY_MODEL_KEYS, RunConfig, RunConfigMismatch
from multiad.cuda_rng import own_cuda_rng, using_cuda_rng
from multiad.data import load_split, normalize
from multiad.gaussian import gaussian_blur
from multiad.losses import (
    adversarial_loss,
    discriminator_loss,
    distillation_loss,
    l2_normalize,
    student_loss,
)
from multiad.mff import MapMoments, recorded_stats
from multiad.models import FeatureDiscriminator
from multiad.provenance import provenance, select_device
from multiad.torch_model import MultiADModel

LOSS_KEYS = ("L_G", "L_adv", "L_D", "L_S")
FUSED_ADAM_DEVICES = ("cuda", "cpu")  # where torch has a fused Adam kernel


@dataclass
class Trainer:
    """Everything Algorithm 1 updates, plus how it runs."""

    cfg: RunConfig
    model: MultiADModel
    discriminators: nn.ModuleDict
    opt_s: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer | None
    device: torch.device
    graph_safe: bool = False  # autocast without its weight cache (needed for CUDA graphs)
    # the callables used in the step: the modules, or their torch.compile'd versions
    teacher_fn: Callable[[torch.Tensor], list[torch.Tensor]] | None = None
    student_fn: Callable[[torch.Tensor], list[torch.Tensor]] | None = None
    distill_fn: Callable[[list[torch.Tensor], list[torch.Tensor]], torch.Tensor] = \
        distillation_loss

    def __post_init__(self) -> None:
        if self.teacher_fn is None:
            self.teacher_fn = self.model.teacher
        if self.student_fn is None:
            self.student_fn = self.model.student

    @classmethod
    def build(cls, cfg: RunConfig, device: torch.device) -> Trainer:
        torch.manual_seed(cfg.train.seed)  # student and D initialisation
        model = MultiADModel(cfg.model)
        info = model.teacher.feature_info
        sides = info.spatial(cfg.data.image_size)
        discs = nn.ModuleDict()
        if cfg.model.discriminator:
            for s in cfg.model.d_stages:
                discs[str(s)] = FeatureDiscriminator(info.channels[s - 1],
                                                     (sides[s - 1], sides[s - 1]),
                                                     dropout=cfg.model.d_dropout)
        model.to(device)
        discs.to(device)
        if device.type == "cuda" and cfg.train.channels_last:
            model.to(memory_format=torch.channels_last)
            discs.to(memory_format=torch.channels_last)
        adam = {"lr": cfg.train.lr, "betas": tuple(cfg.train.betas), **adam_execution(device)}
        opt_s = torch.optim.Adam(model.student.parameters(), **adam)
        opt_d = torch.optim.Adam(discs.parameters(), **adam) if len(discs) else None
        if cfg.train.compile and device.type == "cuda":
            # fuses BN, ReLU, SE scaling and residual adds (the memory-bound bulk of a step),
            # and L_G's normalise–multiply–sum over the four feature pairs and its backward;
            # the modules themselves (and their state_dict keys) stay as they are
            _allow_recompiles()
            mode = cfg.train.compile_mode
            return cls(cfg, model, discs, opt_s, opt_d, device,
                       teacher_fn=torch.compile(model.teacher, mode=mode),
                       student_fn=torch.compile(model.student, mode=mode),
                       distill_fn=torch.compile(distillation_loss, mode=mode))
        return cls(cfg, model, discs, opt_s, opt_d, device)

    def autocast(self) -> torch.autocast:
        on = self.cfg.train.amp and self.device.type == "cuda"
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=on,
                              cache_enabled=not self.graph_safe)

    def step(self, x: torch.Tensor, t_feats: list[torch.Tensor] | None = None
             ) -> dict[str, torch.Tensor]:
        """One batch of Algorithm 1. Returns detached losses (no host sync).

        ``t_feats``: T's features of ``x`` when already known (:func:`teacher_features`);
        otherwise T runs here.
        """
        lam = self.cfg.model.lambda_adv
        self.model.student.train()
        with self.autocast():
            if t_feats is None:
                t_feats = self.teacher_fn(x)
            s_feats = self.student_fn(x)
        out: dict[str, torch.Tensor] = {}
        l_adv = None
        if self.opt_d is not None:
            # D step (Eq. 10): S's features are detached, so S is not updated.
            self.discriminators.train()
            self.discriminators.requires_grad_(True)
            self.opt_d.zero_grad(set_to_none=True)
            l_d = x.new_zeros((), dtype=torch.float32)
            for key, disc in self.discriminators.items():
                n = int(key) - 1
                with self.autocast():
                    real = disc(l2_normalize(t_feats[n]))
                    fake = disc(l2_normalize(s_feats[n].detach()))
                l_d = l_d + discriminator_loss(real, fake)
            l_d.backward()
            self.opt_d.step()
            out["L_D"] = l_d.detach()
            # S step (Eqs. 11–12): D is frozen, its gradients are not needed.
            self.discriminators.requires_grad_(False)
            l_adv = x.new_zeros((), dtype=torch.float32)
            for key, disc in self.discriminators.items():
                with self.autocast():
                    fake = disc(l2_normalize(s_feats[int(key) - 1]))
                l_adv = l_adv + adversarial_loss(fake)
            out["L_adv"] = l_adv.detach()
        l_g = self.distill_fn(t_feats, s_feats)
        l_s = student_loss(l_g, l_adv, lam)
        self.opt_s.zero_grad(set_to_none=True)
        l_s.backward()
        self.opt_s.step()
        out["L_G"] = l_g.detach()
        out["L_S"] = l_s.detach()
        return out

    def prepare(self, images_u8: torch.Tensor) -> torch.Tensor:
        teacher = self.model.teacher
        x = normalize(images_u8.to(self.device, non_blocking=True), teacher.mean, teacher.std)
        return x.contiguous(memory_format=self.memory_format())

    def memory_format(self) -> torch.memory_format:
        """The layout of images and features in the step (channels-last on CUDA)."""
        if self.device.type == "cuda" and self.cfg.train.channels_last:
            return torch.channels_last
        return torch.contiguous_format

    # --- checkpoints -------------------------------------------------------------------
    def state(self, epoch: int, losses: list[dict[str, float]]) -> dict[str, Any]:
        rng = {"torch": torch.get_rng_state()}  # dropout; the data order is (seed, epoch)
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {"epoch": epoch, "config": self.cfg.to_dict(),
                "student": self.model.student.state_dict(),
                "discriminators": self.discriminators.state_dict(),
                "opt_s": self.opt_s.state_dict(),
                "opt_d": self.opt_d.state_dict() if self.opt_d else None,
                "rng": rng, "losses": losses}

    def load_state(self, state: dict[str, Any]) -> tuple[int, list[dict[str, float]]]:
        self.model.student.load_state_dict(state["student"])
        self.discriminators.load_state_dict(state["discriminators"])
        for opt, saved in ((self.opt_s, state["opt_s"]), (self.opt_d, state["opt_d"])):
            if opt is None:
                continue
            capturable = opt.param_groups[0]["capturable"]
            opt.load_state_dict(saved)  # brings back the saved run's execution settings too
            set_adam_execution(opt, self.device, capturable=capturable)
        rng = state["rng"]
        # a checkpoint loaded with map_location=cuda has its RNG states on the GPU too
        torch.set_rng_state(rng["torch"].cpu())
        if "cuda" in rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"].cpu(), self.device)
        return int(state["epoch"]), list(state["losses"])


def _memory_budget(device: torch.device) -> int:
    """Bytes that cached teacher features may take: half the free GPU memory (counting
    what PyTorch holds reserved but unused, e.g. from an earlier group), or a quarter of
    the available RAM (0 where the system does not say)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        free += torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return free // 2
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 4
    except (AttributeError, ValueError, OSError):  # e.g. macOS, Windows
        return 0


@torch.no_grad()
def teacher_features(trainer: Trainer, images_u8: torch.Tensor, progress: bool = True,
                     budget: int | None = None) -> list[torch.Tensor] | None:
    """T's features (4 stages) of every training image, computed once, or ``None`` when
    they would take more than ``budget`` bytes (default :func:`_memory_budget`).

    T is frozen and in eval mode and training uses no augmentation, so these are the
    features each step would compute (in the step's precision and layout, at the step's
    batch size; with ``train.compile`` T here runs uncompiled, which differs from the
    compiled T only by rounding): 250 epochs then cost one pass of T instead of 250. At
    256² they take 3.9 MB per image in bf16 (an MVTec category ≈ 1 GB, BMAD Brain 29 GB).
    """
    n, bs = len(images_u8), trainer.cfg.train.batch_size
    budget = _memory_budget(trainer.device) if budget is None else budget
    out: list[torch.Tensor] = []
    for i in tqdm(range(0, n, bs), desc="teacher features", disable=not progress,
                  leave=False):
        with trainer.autocast():
            feats = trainer.model.teacher(trainer.prepare(images_u8[i:i + bs]))
        if not out:
            need = n * sum(f[0].numel() * f.element_size() for f in feats)
            if need > budget:
                if progress:
                    print(f"teacher features of {n} images need {need / 2**30:.1f} GiB, more "
                          f"than the {budget / 2**30:.1f} GiB budget: T runs in every step")
                return None
            out = [torch.empty((n, *f.shape[1:]), dtype=f.dtype, device=f.device,
                               memory_format=trainer.memory_format()) for f in feats]
        for o, f in zip(out, feats, strict=True):
            o[i:i + len(f)] = f
    return out


def adam_execution(device: torch.device) -> dict[str, bool]:
    """How Adam runs, not what it computes: one fused kernel updates all parameters in a
    single pass over memory. The multi-tensor path makes about eight passes; for S and D
    (86 M parameters) that is a memory-bound cost comparable to a whole training step at
    small batches (``make bench``'s ``adam_*_ms`` components measure both)."""
    fused = device.type in FUSED_ADAM_DEVICES
    return {"fused": fused, "foreach": not fused}


def set_adam_execution(opt: torch.optim.Optimizer, device: torch.device, *,
                       capturable: bool) -> None:
    """Apply :func:`adam_execution` (and ``capturable``, for CUDA-graph capture) to ``opt``,
    with each parameter's ``step`` counter where that mode keeps it. Needed
    after ``load_state_dict``, which restores the settings of the run that saved the
    checkpoint (e.g. an older run, or one from another device)."""
    options = {**adam_execution(device), "capturable": capturable}
    for group in opt.param_groups:
        group.update(options)
    where = device if options["fused"] or capturable else torch.device("cpu")
    for state in opt.state.values():
        step = state.get("step")
        if torch.is_tensor(step):
            state["step"] = step.to(where, torch.float32)


def _allow_recompiles(limit: int = 64) -> None:
    """One notebook compiles many students (MVTec categories, ablation variants, the partial
    last batch): past dynamo's default of 8 compilations per function it would fall back to
    eager (with one logged warning), so the limit is raised."""
    import torch._dynamo.config as dynamo

    name = "recompile_limit" if hasattr(dynamo, "recompile_limit") else "cache_size_limit"
    setattr(dynamo, name, max(getattr(dynamo, name), limit))


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled sample order of one epoch: a function of (seed, epoch) alone."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)


def save_torch(path: Path, obj: Any) -> None:
    """torch.save, atomically."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write(path, lambda fh: fh.write(buf.getbuffer()), binary=True)


def comparable_config(d: dict[str, Any]) -> dict[str, Any]:
    """Config minus the keys a resumed run may change (epochs, device, evaluation batch,
    how the step is executed); keys added to ``RunConfig`` later count at their default."""
    out = {k: dict(v) for k, v in RunConfig.from_dict(d).to_dict().items()}
    for key in ("epochs", "device", "eval_batch_size", "compile", "compile_mode", "cuda_graph",
                "cache_teacher", "checkpoint_every", "keep_checkpoint"):
        out["train"].pop(key, None)
    out["data"].pop("cache_dir", None)
    return out


TRAINING_FILES = ("checkpoint.pt", "model.pt", "losses.csv")  # what a run has trained


def _check_run_dir(cfg: RunConfig, run_dir: Path) -> None:
    """Refuse a folder that holds training of another configuration. A ``config.yaml``
    alone (a run that stopped before its first epoch, e.g. at a wrong data path) is
    simply replaced by the new one."""
    existing = run_dir / "config.yaml"
    trained = any((run_dir / f).exists() for f in TRAINING_FILES)
    if existing.exists() and trained:
        old = RunConfig.load(existing)
        if comparable_config(old.to_dict()) != comparable_config(cfg.to_dict()):
            raise RunConfigMismatch(
                f"{existing}: this run folder holds a run with a different configuration. "
                "Use another output folder, or --fresh to discard the old run.")


def set_determinism(cfg: RunConfig) -> None:
    torch.manual_seed(cfg.train.seed)
    # deterministic: the same run twice gives the same weights; otherwise cuDNN may pick
    # its fastest (autotuned, possibly non-deterministic) kernels
    torch.backends.cudnn.benchmark = not cfg.train.deterministic
    torch.backends.cudnn.deterministic = cfg.train.deterministic


def _write_losses(path: Path, losses: list[dict[str, float]]) -> None:
    def write(fh: Any) -> None:
        w = csv.DictWriter(fh, fieldnames=["epoch", *LOSS_KEYS, "seconds"], extrasaction="ignore")
        w.writeheader()
        w.writerows(losses)
    atomic_write(path, write)


@torch.no_grad()
def calibrate(trainer: Trainer, images_u8: torch.Tensor, progress: bool = True
              ) -> dict[str, Any]:
    """Fit Ψ's BN statistics to the normal training maps (METHOD_SPEC §7) and record the
    training images' own scores (a reference for ``predict``)."""
    model = trainer.model
    model.eval()
    bs = trainer.cfg.train.eval_batch_size
    moments = MapMoments(4)
    kept = []  # layer maps are small (native resolution): one network pass serves both uses
    for i in tqdm(range(0, len(images_u8), bs), desc="calibrating MFF", disable=not progress,
                  leave=False):
        with trainer.autocast():
            maps = [m.float() for m in model.maps(trainer.prepare(images_u8[i:i + bs]))]
        moments.update(maps)
        kept.append(maps)
    stats = moments.result()
    if model.mff is not None:
        model.mff.calibrate(stats)
    size = (images_u8.shape[-2], images_u8.shape[-1])
    scores = [image_score(gaussian_blur(fuse_maps(maps, size, model.mff,
                                                  trainer.cfg.model.map_fusion),
                                        trainer.cfg.model.sigma)).cpu() for maps in kept]
    s = torch.cat(scores).double().numpy()
    return {"map_stats": [{"mean": m, "var": v} for m, v in stats],
            "train_scores": {"max": float(s.max()), "p99": float(np.quantile(s, 0.99)),
                             "mean": float(s.mean())}}


@dataclass
class _Run:
    """One run folder being trained (inside :func:`train_many`)."""

    cfg: RunConfig
    dir: Path
    data: Any
    images: torch.Tensor
    trainer: Trainer
    start: int
    losses: list[dict[str, float]]
    graphed: Any  # GraphedStep | None
    stream: Any  # torch.cuda.Stream | None: all of this run's GPU work is queued on it
    t_start: float
    t_cache: list[torch.Tensor] | None  # T's features of ``images`` (None: T runs per step)
    cpu_rng: torch.Tensor | None = None  # its CPU RNG state between its steps (isolated)
    cuda_rng: Any = None  # torch.Generator | None: its own CUDA RNG state (multiad.cuda_rng)
    together: list[str] = field(default_factory=list)  # runs that trained at the same time
    isolate_rng: bool = False  # keep its CPU RNG state apart from other runs'

    @contextmanager
    def active(self) -> Iterator[None]:
        """This run's stream and RNG states (dropout draws), while it queues work."""
        dev = self.trainer.device
        if self.isolate_rng:
            torch.set_rng_state(self.cpu_rng)
        with using_cuda_rng(self.cuda_rng, dev), \
                torch.cuda.stream(self.stream) if self.stream is not None else nullcontext():
            yield
        if self.isolate_rng:
            self.cpu_rng = torch.get_rng_state()


def is_complete(cfg: RunConfig, run_dir: str | Path) -> bool:
    """Whether ``run_dir`` holds a finished training of at least ``cfg``'s epochs."""
    done = Path(run_dir) / "train.json"  # written last, after model.pt
    return (Path(run_dir) / "model.pt").exists() and done.exists() \
        and json.loads(done.read_text()).get("epochs", -1) >= cfg.train.epochs


def _data_key(cfg: RunConfig) -> tuple[Any, ...]:
    d = cfg.data
    return (d.kind, d.root, d.category, d.image_size, d.cache_dir,
            str(select_device(cfg.train.device)))


@dataclass
class _Shared:
    """A decoded training set on the device, and T's features of it, shared by the runs of a
    group that train on it (keyed by teacher, precision, layout and batch size)."""

    data: Any
    images: torch.Tensor
    teacher: dict[tuple[Any, ...], list[torch.Tensor] | None] = field(default_factory=dict)


def _open_run(cfg: RunConfig, run_dir: Path, resume: bool, progress: bool,
              loaded: dict[tuple[Any, ...], _Shared] | None = None) -> _Run | Path:
    """Prepare one run: its folder, data, trainer and resume state — or, when the run is
    already complete, the path of its ``model.pt``. ``loaded`` shares decoded training
    sets and T's features of them (on the device) between the runs of a group."""
    cfg = resolve_auto_teacher(cfg.validate())
    run_dir.mkdir(parents=True, exist_ok=True)
    _check_run_dir(cfg, run_dir)
    ckpt_path, model_path = run_dir / "checkpoint.pt", run_dir / "model.pt"
    atomic_write(run_dir / "config.yaml", lambda fh: fh.write(cfg.to_yaml()))
    device = select_device(cfg.train.device)
    set_determinism(cfg)
    t_start = time.time()

    if resume and is_complete(cfg, run_dir):
        if progress:
            print(f"{model_path} is complete; nothing to do")
        return model_path

    loaded = {} if loaded is None else loaded
    key = _data_key(cfg)
    if key not in loaded:
        data, split = load_split(cfg.data, "train", progress)
        loaded[key] = _Shared(data, split.images.to(device) if device.type == "cuda"
                              else split.images)
    shared = loaded[key]  # read only: runs index it, never write to it
    data, images = shared.data, shared.images
    trainer = Trainer.build(cfg, device)
    start, losses = 0, []
    if resume and ckpt_path.exists():
        state = torch.load(ckpt_path, map_location=device, weights_only=False)
        start, losses = trainer.load_state(state)
        losses = [row for row in losses if row["epoch"] <= start]
        if progress:
            print(f"resuming {run_dir} after epoch {start}/{cfg.train.epochs}")
    if model_path.exists() and resume and start >= cfg.train.epochs:
        if progress:
            print(f"{model_path} is complete ({start} epochs); nothing to do")
        return model_path

    t_cache = None
    if cfg.train.cache_teacher and start < cfg.train.epochs:
        t_key = (cfg.model.backbone, cfg.model.teacher_weights, cfg.train.amp,
                 cfg.train.channels_last, cfg.train.batch_size)
        if t_key not in shared.teacher:
            shared.teacher[t_key] = teacher_features(trainer, images, progress)
        t_cache = shared.teacher[t_key]
    stream = cuda_rng = None
    if device.type == "cuda":
        stream = torch.cuda.Stream(device)
        stream.wait_stream(torch.cuda.current_stream(device))  # data and weights are ready
        cuda_rng = own_cuda_rng(device)  # from the seed (or checkpoint) just set
    bs = cfg.train.batch_size
    graphed = None
    if cfg.train.cuda_graph and device.type == "cuda" and len(images) >= bs \
            and start < cfg.train.epochs:
        from multiad.cuda_graph import GraphedStep

        # the same step without launch overhead; warm-up steps are undone before capture
        graphed = GraphedStep(trainer, (bs, *images.shape[1:]), stream=stream,
                              teacher=None if t_cache is None else
                              [((bs, *c.shape[1:]), c.dtype) for c in t_cache], rng=cuda_rng)
    return _Run(cfg, run_dir, data, images, trainer, start, losses, graphed, stream, t_start,
                t_cache, cpu_rng=torch.get_rng_state(), cuda_rng=cuda_rng)


def _run_epochs(run: _Run, progress: bool, position: int,
                on_epoch_end: Callable[[Path, int], None] | None) -> Iterator[None]:
    """Train ``run`` to its last epoch and save it, yielding after each queued batch so
    that several runs can interleave their steps."""
    cfg, trainer, images = run.cfg, run.trainer, run.images
    bar = tqdm(range(run.start, cfg.train.epochs), desc=f"train {run.data.name}", unit="epoch",
               disable=not progress, initial=run.start, total=cfg.train.epochs,
               position=position)
    try:
        yield from _epochs(run, bar, on_epoch_end)
        with run.active():
            calib = calibrate(trainer, images, progress=progress)
            _save_trained(run, calib)  # its GPU→CPU copies ordered after the run's work
    finally:
        bar.close()
        if run.stream is not None:  # nothing of this run is still queued when it is freed
            run.stream.synchronize()


def _epochs(run: _Run, bar: Any, on_epoch_end: Callable[[Path, int], None] | None
            ) -> Iterator[None]:
    cfg, trainer, images = run.cfg, run.trainer, run.images
    device, n, bs = trainer.device, len(images), cfg.train.batch_size
    ckpt_path = run.dir / "checkpoint.pt"
    every = max(1, cfg.train.checkpoint_every)
    for epoch in bar:
        t0 = time.time()
        with run.active():
            sums = {k: torch.zeros((), device=device) for k in LOSS_KEYS}
            # on the device once per epoch: a per-step copy from pageable host memory may
            # wait for this run's stream, which would stall the other runs' queues
            order = epoch_order(n, cfg.train.seed, epoch).to(images.device)
        steps = 0
        for i in range(0, n, bs):
            idx = order[i:i + bs]
            with run.active():
                x = trainer.prepare(images[idx])
                t = None if run.t_cache is None else [c[idx] for c in run.t_cache]
                if run.graphed is not None and len(idx) == bs:
                    out = run.graphed(x, t)  # queued on this run's stream, which is current
                else:
                    out = trainer.step(x, t)
                for k, v in out.items():
                    sums[k] += v
            steps += 1
            yield
        with run.active():  # reading the sums waits for this run's stream only
            means = {k: float(v) / steps for k, v in sums.items()}
            # wall time of the epoch (shared with the runs that train at the same time)
            row = {"epoch": epoch + 1, "seconds": round(time.time() - t0, 3), **means}
            if trainer.opt_d is None:
                row["L_adv"] = row["L_D"] = float("nan")
            run.losses.append(row)
            last = epoch + 1 == cfg.train.epochs
            if (epoch + 1) % every == 0 or last:
                save_torch(ckpt_path, trainer.state(epoch + 1, run.losses))
                _write_losses(run.dir / "losses.csv", run.losses)
        bar.set_postfix({k: f"{row[k]:.4f}" for k in LOSS_KEYS if row[k] == row[k]})
        if on_epoch_end is not None:
            on_epoch_end(run.dir, epoch + 1)
        yield


def _save_trained(run: _Run, calib: dict[str, Any]) -> None:
    cfg, trainer, data = run.cfg, run.trainer, run.data
    meta = {"config": cfg.to_dict(), "teacher": trainer.model.teacher.source.describe(),
            "data": {"name": data.name, "kind": data.kind, "root": str(data.root),
                     "layout": data.layout, "counts": data.counts()},
            "epochs": cfg.train.epochs, "losses": run.losses, **calib,
            "provenance": provenance(trainer.device),
            "train_wall_s": round(time.time() - run.t_start, 2),
            "teacher_features_cached": run.t_cache is not None,
            "cuda_graph_used": run.graphed is not None,  # the config asks; this says it ran
            "trained_together_with": run.together}
    save_torch(run.dir / "model.pt", {
        "student": trainer.model.student.state_dict(),
        "mff": trainer.model.mff.state_dict() if trainer.model.mff else None, "meta": meta})
    _write_losses(run.dir / "losses.csv", run.losses)
    write_json(run.dir / "train.json", meta)
    if not cfg.train.keep_checkpoint:
        (run.dir / "checkpoint.pt").unlink(missing_ok=True)  # model.pt holds all eval needs


class TrainingFailed(RuntimeError):
    """Some runs of a :func:`train_many` group failed; the others were trained and saved."""

    def __init__(self, failures: dict[Path, BaseException]) -> None:
        self.failures = failures
        lines = [f"{path}: {type(exc).__name__}: {exc}" for path, exc in failures.items()]
        super().__init__(f"{len(failures)} run(s) failed (the others finished):\n"
                         + "\n".join(lines))


def _without_frames(exc: Exception) -> Exception:
    """``exc`` with its traceback's frames cleared: they hold the failed run's model,
    optimiser and activations, which the runs after it need the memory of."""
    traceback.clear_frames(exc.__traceback__)
    return exc


def train_many(runs: list[tuple[RunConfig, str | Path]], *, concurrent: int = 0,
               resume: bool = True, progress: bool = True,
               on_epoch_end: Callable[[Path, int], None] | None = None) -> list[Path]:
    """Train several independent runs at once (Algorithm 1 each, unchanged); return the
    paths of their ``model.pt`` files.

    At most ``concurrent`` runs (0: all) train at a time; when one finishes the next one
    starts. Each run keeps its own data order, RNG state (dropout), optimiser and, on CUDA,
    its own stream: the runs' steps are queued in turn, so on a GPU the small batches of
    several runs fill the device together (e.g. MVTec categories, or ablation settings).
    Each run's weights are those it would get trained alone (bit for bit on the CPU; on a
    GPU within the tolerance of its kernels): on CUDA each run draws D's dropout from its
    own RNG state object (:mod:`multiad.cuda_rng`), to which its graph is bound, so
    concurrent replays cannot read each other's seed and offset (a run trained alone
    draws from its own state too, seeded as before; the global CUDA state is left as it
    was). A run that fails
    does not stop the others; :class:`TrainingFailed` names the failed runs at the end.
    """
    dirs = [Path(d) for _, d in runs]
    if len(set(dirs)) != len(dirs):
        raise ValueError(f"train_many: a run folder is listed twice: {[str(d) for d in dirs]}")
    devices = {select_device(cfg.train.device) for cfg, _ in runs}
    flags = {cfg.train.deterministic for cfg, _ in runs}
    if len(devices) > 1 or len(flags) > 1:
        raise ValueError("train_many: the runs of one group share a device and the "
                         "train.deterministic switch (cuDNN's mode is global)")
    alone = len(runs) == 1
    limit = concurrent if concurrent > 0 else len(runs)
    pending = list(zip((cfg for cfg, _ in runs), dirs, strict=True))
    failures: dict[Path, BaseException] = {}
    done: dict[Path, Path] = {}
    active: dict[Path, tuple[_Run, Iterator[None], int]] = {}  # run, its steps, bar position
    loaded: dict[tuple[Any, ...], _Shared] = {}  # training sets (and T's features) in use

    def _start(cfg: RunConfig, run_dir: Path) -> None:
        # a function of its own: no local of train_many keeps a finished run alive
        r = _open_run(cfg, run_dir, resume, progress, loaded)
        if isinstance(r, Path):
            done[run_dir] = r
            return
        r.isolate_rng = not alone  # others draw from the CPU RNG between its steps
        for other, _, _ in active.values():
            other.together.append(str(r.dir))
            r.together.append(str(other.dir))
        slot = min(set(range(limit)) - {pos for _, _, pos in active.values()})
        active[run_dir] = (r, _run_epochs(r, progress, slot, on_epoch_end), slot)

    left = False  # a run has finished or failed since the last look at ``loaded``
    while pending or active:
        if left:
            left = False
            needed = {_data_key(c) for c, _ in pending} | {_data_key(r.cfg)
                                                            for r, _, _ in active.values()}
            for key in set(loaded) - needed:
                del loaded[key]  # no run left needs this training set on the device
        while pending and len(active) < limit:
            cfg, run_dir = pending.pop(0)
            try:
                _start(cfg, run_dir)
            except Exception as exc:
                if alone:
                    raise
                failures[run_dir] = _without_frames(exc)
                left = True
        for run_dir in list(active):
            try:
                next(active[run_dir][1])
            except StopIteration:
                done[run_dir] = run_dir / "model.pt"
                del active[run_dir]
                left = True
            except Exception as exc:
                if alone:
                    raise
                failures[run_dir] = _without_frames(exc)
                del active[run_dir]
                left = True
    loaded.clear()  # the error below keeps this frame alive; not its training sets
    if failures:
        raise TrainingFailed(failures)
    return [done[d] for d in dirs]


def train(cfg: RunConfig, run_dir: str | Path, *, resume: bool = True, progress: bool = True,
          on_epoch_end: Callable[[int], None] | None = None) -> Path:
    """Run Algorithm 1 into ``run_dir``; return the path of the final ``model.pt``."""
    hook = None if on_epoch_end is None else (lambda _dir, epoch: on_epoch_end(epoch))
    return train_many([(cfg, run_dir)], resume=resume, progress=progress, on_epoch_end=hook)[0]


def load_trained(run_dir: str | Path, device: torch.device | str = "cpu",
                 model_overrides: dict[str, Any] | None = None
                 ) -> tuple[MultiADModel, RunConfig, dict[str, Any]]:
    """Rebuild the trained T + S + Ψ of a run folder, in eval mode.

    ``model_overrides`` may change the switches that act after training only
    (``EVAL_ONLY_MODEL_KEYS``: MFF on/off, its ReLU, sum/product fusion, σ); Ψ is then
    calibrated from the normal-map statistics the run recorded.
    """
    path = Path(run_dir) / "model.pt"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no trained model here. Train first: multiad train "
                                f"--out {run_dir} ...")
    blob = torch.load(path, map_location="cpu", weights_only=False)
    meta = blob["meta"]
    cfg = RunConfig.from_dict(meta["config"], source=str(path))
    overrides = dict(model_overrides or {})
    bad = set(overrides) - set(EVAL_ONLY_MODEL_KEYS)
    if bad:
        raise ValueError(f"{path}: {sorted(bad)} change training; only "
                         f"{', '.join(EVAL_ONLY_MODEL_KEYS)} can vary for a trained model")
    if overrides:
        cfg = cfg.with_overrides([f"model.{k}={v}" for k, v in overrides.items()]).validate()
    model = MultiADModel(cfg.model)
    model.student.load_state_dict(blob["student"])
    if model.mff is not None:
        if overrides or blob["mff"] is None:
            model.mff.calibrate(recorded_stats(meta["map_stats"]))
        else:
            model.mff.load_state_dict(blob["mff"])
    return model.to(device).eval(), cfg, meta
