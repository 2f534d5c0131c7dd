"""The method contract: what a method declares, once, in its own folder.

A method is a subclass of :class:`Method` in its folder's ``method.py`` (or in a package of
your own, found through the ``multiad.methods`` entry-point group). Naming it registers it
(:mod:`multiad.methods.registry`); nothing else in the package lists methods. It declares:

- who it is: ``name`` (``--method NAME``), ``title`` (as tables name it), ``kind``
  (``"trained"``: epochs of optimiser steps, or ``"fitted"``: one pass over normal
  features), ``reference`` (paper and code), ``order`` (its place in listings);
- its conditions: ``backbone`` (its reference teacher) and ``schedule`` (reference epochs,
  batch size, learning rate, Adam's betas), which a run fills in where it leaves them open;
- its settings: ``Config``, a dataclass that is its section of the run configuration
  (``--set NAME.KEY=VALUE``); ``eval_only_keys``, the keys that act after training only
  (a trained run is evaluated under each without training again); ``execution_keys``, the
  keys that say how a run executes, not what it learns (a resumed run may change them);
  ``former_sections`` and ``moved_keys``, where earlier versions kept its settings;
- its networks: ``model`` (its inference model, built as ``model(cfg, teacher)``, with
  ``predict`` → :class:`~multiad.methods.base.AnomalyOutput`), ``runner`` (its
  :class:`~multiad.engine.trainer.TrainerBase` or
  :class:`~multiad.engine.trainer.FitterBase`) and ``saved_modules`` (the model's
  attributes whose weights ``model.pt`` keeps: saving and loading come from here);
- its maps: ``layer_names`` (the layer maps it returns, as figures label them) and
  ``combiner`` (how stored layer maps become the anomaly map, for figures);
- work shared by runs (optional): ``preparation_key`` and ``prepare``, done once per key
  before the runs that need it train (EfficientAD's and MHKD's distilled teacher); a
  reproduction plans it as a step of its own.

The engine's shared part — validate the configuration, seed, build the frozen teacher, move
to the device — is done once by the runner base (:mod:`multiad.engine.trainer`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from multiad.backbones import FrozenBackbone, build_backbone
from multiad.config import RunConfig
from multiad.methods.base import MapCombiner
from multiad.methods.registry import register

KINDS = ("trained", "fitted")
_REQUIRED = ("title", "kind", "backbone", "layer_names", "model", "runner")


@dataclass
class NoSettings:
    """The section of a method without settings of its own."""


class Method:
    """A method of the comparison (see the module's docstring). Subclass, name it, and it
    is registered; override ``load``, ``teacher`` or ``build_model`` only where the
    defaults (the saved modules' weights; the configured pretrained backbone; ``model(cfg,
    teacher)``) do not fit."""

    name: ClassVar[str]
    title: ClassVar[str]
    kind: ClassVar[str]
    backbone: ClassVar[str]
    layer_names: ClassVar[tuple[str, ...]]
    model: ClassVar[type]
    runner: ClassVar[type]
    reference: ClassVar[str] = ""
    schedule: ClassVar[dict[str, Any]] = {}
    Config: ClassVar[type] = NoSettings
    saved_modules: ClassVar[tuple[str, ...]] = ()
    eval_only_keys: ClassVar[tuple[str, ...]] = ()
    execution_keys: ClassVar[tuple[str, ...]] = ()
    order: ClassVar[float] = 100.0  # the package's own: 0–99; yours: after them
    # configurations of earlier versions: its section's old names, and keys of its section
    # that moved elsewhere ("key": "section.key"); both still load
    former_sections: ClassVar[tuple[str, ...]] = ()
    moved_keys: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            return  # a shared base of several methods, not a method itself
        missing = [a for a in _REQUIRED if not hasattr(cls, a)]
        if missing:
            raise TypeError(f"method {cls.__module__}.{cls.__qualname__} ({cls.name!r}) "
                            f"does not declare {', '.join(missing)} (multiad.methods.contract)")
        if cls.kind not in KINDS:
            raise TypeError(f"method {cls.name!r}: kind {cls.kind!r}; use one of {KINDS}")
        register(cls())

    @property
    def section(self) -> str:
        """Its section of the run configuration (its name)."""
        return self.name

    @property
    def trained(self) -> bool:
        return self.kind == "trained"

    def settings(self, cfg: RunConfig) -> Any:
        """Its section of ``cfg``."""
        return cfg.sections[self.section]

    def build(self, cfg: RunConfig, device: torch.device) -> Any:
        """Its runner, ready to train or fit on ``device``."""
        return self.runner(cfg, device)

    def teacher(self, cfg: RunConfig, blob: dict[str, Any] | None = None) -> FrozenBackbone:
        """The frozen teacher of a run (``blob``: the run's ``model.pt``, when loading)."""
        return build_backbone(cfg.teacher.backbone, cfg.teacher.weights)

    def build_model(self, cfg: RunConfig, teacher: FrozenBackbone) -> Any:
        """Its inference model around ``teacher``, untrained."""
        return self.model(cfg, teacher)

    def load(self, cfg: RunConfig, blob: dict[str, Any], recalibrate: bool = False) -> Any:
        """Its inference model from a run's ``model.pt`` (on the CPU). ``recalibrate``:
        an ``eval_only_keys`` switch was changed since training (Multi-AD's Ψ)."""
        model = self.build_model(cfg, self.teacher(cfg, blob))
        for name in self.saved_modules:
            getattr(model, name).load_state_dict(blob[name])
        return model

    def combiner(self, cfg: RunConfig, meta: dict[str, Any]) -> MapCombiner:
        """How stored layer maps (N×1×h×w each) become the smoothed anomaly map at an input
        size, as at test time (``meta``: the run's ``model.pt`` meta)."""
        raise NotImplementedError(f"method {self.name!r} does not say how its layer maps "
                                  "combine (Method.combiner)")

    def preparation_key(self, cfg: RunConfig) -> str | None:  # noqa: ARG002
        """What a run of ``cfg`` needs done before it trains and may share with other runs
        (equal keys: the same work, done once); None: nothing."""
        return None

    def prepare(self, cfg: RunConfig, device: torch.device, progress: bool = False) -> None:
        """Do the work :meth:`preparation_key` names (its result cached where training
        finds it; training does it itself when it was not done before)."""

    def comparable(self, section: dict[str, Any]) -> dict[str, Any]:
        """Its section minus ``execution_keys``: what two runs must share to be one run."""
        return {k: v for k, v in section.items() if k not in self.execution_keys}
