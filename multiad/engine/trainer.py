"""What the engine needs of a method while it learns from the normal training images.

- :class:`TrainerBase`, a *trained* method (Multi-AD, STFPM, RD4AD, …): it owns its
  networks, its optimisers and its step (Multi-AD: a D step, then an S step; STFPM: one
  SGD step); the engine owns the epochs, the data order, progress (``loop``), checkpoints
  and resume (``resume``), concurrency (``scheduler``), CUDA graphs (``cuda_graph``) and
  the shared data and teacher features (``shared_data``).
- :class:`FitterBase`, a *fitted* method (PaDiM, PatchCore): one pass over the training
  images' features (:mod:`multiad.engine.fit`).

Both share :class:`MethodRunner`: the preamble every method needs once (the configuration
validated, the seed, the frozen teacher, the method's model on the device), the saved state
(its method's ``saved_modules``) and how a batch of images becomes its input.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import torch
from torch import nn
from tqdm.auto import tqdm

from multiad.backbones import FrozenBackbone
from multiad.config import RunConfig
from multiad.data import normalize
from multiad.engine.optim import set_execution
from multiad.methods.registry import get_method


def score_summary(scores: torch.Tensor) -> dict[str, float]:
    """Maximum, 99th percentile and mean of the training images' scores."""
    s = scores.double()
    return {"max": float(s.max()), "p99": float(torch.quantile(s, 0.99)),
            "mean": float(s.mean())}


class MethodRunner:
    """A method learning from normal images: ``cfg`` (validated), ``device``, ``method``
    (its :class:`~multiad.methods.contract.Method`), ``model`` (its inference model, with
    ``predict``, on the device) and ``teacher`` (the model's frozen teacher)."""

    teacher: FrozenBackbone
    model: Any

    def __init__(self, cfg: RunConfig, device: torch.device) -> None:
        cfg = cfg.validate()  # the reference backbone and schedule where left open
        self.cfg, self.device = cfg, device
        self.graph_safe = False  # autocast without its weight cache (needed for CUDA graphs)
        self.method = get_method(cfg.method)
        torch.manual_seed(cfg.train.seed)  # the method's own networks' initialisation
        self.model = self.method.build_model(cfg, self.build_teacher()).to(device)
        self.teacher = self.model.teacher
        if self.memory_format() is torch.channels_last:
            self.model.to(memory_format=torch.channels_last)

    def build_teacher(self) -> FrozenBackbone:
        """The frozen teacher (after seeding; by default the method's ``teacher``)."""
        return self.method.teacher(self.cfg)

    def finish(self, images_u8: torch.Tensor, progress: bool = True) -> dict[str, Any]:
        """After learning (Multi-AD calibrates Ψ here); what it returns is recorded in
        ``train.json`` and ``model.pt``'s meta. By default: the training images' own image
        scores (the reference ``predict`` compares a new image's score with), from the
        method's inference model ``self.model``."""
        model = self.model
        model.eval()
        bs = self.cfg.train.eval_batch_size
        scores = []
        with torch.no_grad():
            for i in tqdm(range(0, len(images_u8), bs), desc="training scores",
                          disable=not progress, leave=False):
                with self.autocast():
                    scores.append(model.predict(self.prepare(images_u8[i:i + bs])).score.cpu())
        return {"train_scores": score_summary(torch.cat(scores))}

    def inference_state(self) -> dict[str, Any]:
        """What ``model.pt`` keeps for evaluation (the method's ``load`` reads it back): by
        default the weights of the method's ``saved_modules``."""
        return {name: getattr(self.model, name).state_dict()
                for name in self.method.saved_modules}

    def autocast(self) -> torch.autocast:
        on = self.cfg.train.amp and self.device.type == "cuda"
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=on,
                              cache_enabled=not self.graph_safe)

    def memory_format(self) -> torch.memory_format:
        """The layout of images and features in the step (channels-last on CUDA)."""
        if self.device.type == "cuda" and self.cfg.train.channels_last:
            return torch.channels_last
        return torch.contiguous_format

    def prepare(self, images_u8: torch.Tensor) -> torch.Tensor:
        """uint8 images → the teacher's normalised input, on the device, in the step's layout."""
        t = self.teacher
        x = normalize(images_u8.to(self.device, non_blocking=True), t.mean, t.std)
        return x.contiguous(memory_format=self.memory_format())

    def teacher_cache_key(self) -> tuple[Any, ...]:
        """What T's cached features depend on besides the data and the step's execution:
        the teacher and this method's ``teacher_forward`` (one that overrides it — in
        float32, on other inputs — never shares another method's cache)."""
        return (self.cfg.teacher.backbone, self.cfg.teacher.weights,
                type(self).teacher_forward.__qualname__)

    @torch.no_grad()
    def teacher_forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """T's features as the step takes them (for the engine's cache), under autocast."""
        with self.autocast():
            return self.teacher(x)

    def batches(self, images_u8: torch.Tensor, progress: bool = True, desc: str = "features"
                ) -> Iterator[tuple[torch.Tensor, list[torch.Tensor]]]:
        """(input, T's features) of ``images_u8`` in batches of ``train.batch_size``."""
        bs = self.cfg.train.batch_size
        for i in tqdm(range(0, len(images_u8), bs), desc=desc, disable=not progress,
                      leave=False):
            x = self.prepare(images_u8[i:i + bs])
            yield x, self.teacher_forward(x)


class FitterBase(MethodRunner):
    """A fitted method: ``fit`` is its one pass over the training images."""

    def fit(self, images_u8: torch.Tensor, progress: bool = True) -> dict[str, Any]:
        """Learn from the uint8 training images; what it returns goes into the meta."""
        raise NotImplementedError


class TrainerBase(MethodRunner):
    """A trained method. Subclasses make their optimisers and implement ``optimizers`` and
    ``step`` (``modules`` and ``inference_state`` when more than the method's
    ``saved_modules``; ``finish`` when they calibrate after training)."""

    loss_keys: ClassVar[tuple[str, ...]] = ()  # the columns of losses.csv, in order
    # whether ``train.cuda_graph`` may replay this trainer's step from a CUDA graph: only a
    # step that has been checked on a GPU says so (Multi-AD's); the others run eagerly
    graph_capturable: ClassVar[bool] = False

    def begin(self, images_u8: torch.Tensor, progress: bool = True) -> torch.Tensor:
        """Before the first epoch, and again on resume: the images the steps train on. All
        of them by default; a method that calibrates on held-out training images (MHKD)
        sets them aside here (deterministically: a resumed run holds out the same)."""
        return images_u8

    def validation_model(self, images_u8: torch.Tensor) -> Any:
        """The inference model as it stands mid-training, for the held-out validation
        (:mod:`multiad.engine.validation`; called in eval mode, without gradients). By
        default ``self.model``; a method that calibrates after training (Multi-AD's Ψ)
        calibrates here on some of the training images ``images_u8``."""
        return self.model

    def modules(self) -> dict[str, nn.Module]:
        """The trained networks by name (their state goes into checkpoints): by default the
        method's ``saved_modules``."""
        return {name: getattr(self.model, name) for name in self.method.saved_modules}

    def optimizers(self) -> dict[str, torch.optim.Optimizer | None]:
        """The optimisers by name (``None`` for one the configuration switches off)."""
        raise NotImplementedError

    def step(self, x: torch.Tensor, t_feats: list[torch.Tensor] | None = None
             ) -> dict[str, torch.Tensor]:
        """One optimisation step on a prepared batch; detached losses (no host sync).
        ``t_feats``: the teacher's features of ``x`` when known (the engine's cache)."""
        raise NotImplementedError

    def state(self, epoch: int, losses: list[dict[str, float]]) -> dict[str, Any]:
        """A checkpoint: weights, optimiser and RNG states, losses so far."""
        rng = {"torch": torch.get_rng_state()}  # e.g. dropout; the data order is (seed, epoch)
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {"epoch": epoch, "config": self.cfg.to_dict(own_section_only=True),
                **{name: m.state_dict() for name, m in self.modules().items()},
                **{name: opt.state_dict() if opt is not None else None
                   for name, opt in self.optimizers().items()},
                "rng": rng, "losses": losses}

    def load_state(self, state: dict[str, Any]) -> tuple[int, list[dict[str, float]]]:
        for name, m in self.modules().items():
            m.load_state_dict(state[name])
        for name, opt in self.optimizers().items():
            if opt is None:
                continue
            capturable = bool(opt.param_groups[0].get("capturable", False))
            opt.load_state_dict(state[name])  # brings back the saved run's execution too
            set_execution(opt, self.device, capturable=capturable)
        rng = state["rng"]
        # a checkpoint loaded with map_location=cuda has its RNG states on the GPU too
        torch.set_rng_state(rng["torch"].cpu())
        if "cuda" in rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"].cpu(), self.device)
        return int(state["epoch"]), list(state["losses"])
