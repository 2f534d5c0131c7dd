"""Run configuration: every switch of METHOD_SPEC (and of each method) in one object.

A ``RunConfig`` names its ``method`` (``multiad`` by default; ``multiad.methods``) and has
sections: ``data``, ``teacher`` (the frozen backbone every method builds on), ``train``
(the schedule and how it runs), and one section per registered method, named after it
(``multiad``: Multi-AD's own switches; ``padim``, …; a plugin's too): this file names no
method, the registry (``multiad.methods.registry``) supplies them. It round-trips through
YAML/JSON, rejects unknown keys with a message that names them, and takes overrides such
as ``multiad.se=false`` or ``method=padim`` (values parsed as YAML) from the command line.
``validate()`` returns the concrete configuration: what a run leaves to its method (the
teacher's backbone, the schedule) filled in with that method's reference values.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import typing
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import pydantic
import yaml

from multiad.backbones import BACKBONES, auto_backbone, get_spec
from multiad.methods.registry import all_methods, get_method


class RunConfigMismatch(RuntimeError):
    """A run folder already holds a run made with another configuration."""


DATA_KINDS = ("synthetic", "mvtec", "mvtec_loco", "brain", "liver", "retina", "folder")

# torch.compile modes that leave CUDA graphs to ``train.cuda_graph`` (multiad.engine.cuda_graph)
COMPILE_MODES = ("default", "max-autotune-no-cudagraphs")


@dataclass
class DataConfig:
    """Which dataset, where, and the network input size (METHOD_SPEC §1, §9)."""

    kind: str = "synthetic"
    root: str = "data/synthetic"
    category: str | None = "texture"
    image_size: int = 256
    # decoded-array cache; None → $MULTIAD_CACHE_DIR, else the per-user cache folder
    # (multiad.data.default_cache_dir), never the dataset's own (often read-only) folder
    cache_dir: str | None = None


@dataclass
class TeacherConfig:
    """The frozen pretrained backbone ("teacher") a method builds on (``multiad.backbones``)."""

    # None → the method's reference backbone (Multi-AD: the paper's wide_resnet50_2); or any
    # name of multiad.backbones.BACKBONES, e.g. the pretrained offline efficientnet_lite0
    backbone: str | None = None
    # "imagenet" (the backbone's pretrained file), a file path, "random" (tests only) or
    # "auto": the backbone's pretrained file if obtainable, else the pretrained offline
    # backbone (resolved before a run is written down). Every result records the teacher.
    weights: str = "imagenet"


@dataclass
class TrainConfig:
    """The schedule and how it runs. ``None`` leaves a value to the method's reference
    schedule (``validate`` fills it in; Multi-AD, paper §4: 250 epochs, batch 16, Adam
    lr 1e-3, default betas)."""

    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    betas: tuple[float, float] | None = None  # Adam's, for the methods that use Adam
    seed: int = 0
    device: str = "auto"  # "auto" → CUDA when present, else CPU
    amp: bool = True  # bf16 autocast on CUDA (ignored on CPU)
    channels_last: bool = True  # on CUDA
    compile: bool = False  # torch.compile teacher, student and L_G (CUDA only)
    compile_mode: str = "default"  # torch.compile's mode: one of COMPILE_MODES
    cuda_graph: bool = False  # replay each full-batch step from a CUDA graph (CUDA only)
    # T is frozen and training uses no augmentation, so T's features of a training image are
    # the same every epoch: computed once and kept in memory (when they fit), not per step
    cache_teacher: bool = True
    deterministic: bool = True
    eval_batch_size: int = 32
    # a validation without test labels (multiad.engine.validation): this share of the normal
    # training images is held out, and after every ``validate_every`` epochs the method is
    # scored on them as they are and with a pasted synthetic anomaly (losses.csv: val_*)
    holdout: float = 0.0
    validate_every: int = 1
    checkpoint_every: int = 1  # epochs between checkpoints (the last epoch always saves)
    # the training state (weights + Adam moments, ~1 GB for WRN-50) is needed only to resume
    # or to extend a run; by default it is deleted once model.pt is written
    keep_checkpoint: bool = False


CORE_SECTIONS: dict[str, type] = {"data": DataConfig, "teacher": TeacherConfig,
                                  "train": TrainConfig}


def default_method() -> str:
    """The package's main method: the registered one of lowest ``order``."""
    return next(iter(all_methods()))


def renamed_sections() -> dict[str, str]:
    """Old section names of today's method sections (a method's ``former_sections``):
    configurations of earlier versions still load."""
    return {old: m.section for m in all_methods().values() for old in m.former_sections}


def moved_keys() -> dict[tuple[str, str], tuple[str, str]]:
    """(section, key) of earlier versions → where the key is today (a method's
    ``moved_keys``, under its section's former names too)."""
    out = {}
    for m in all_methods().values():
        for key, target in m.moved_keys.items():
            new = tuple(target.split("."))
            for sec in (m.section, *m.former_sections):
                out[(sec, key)] = new
    return out


def method_sections() -> dict[str, type]:
    """Every registered method's section (its name) and settings class."""
    return {m.section: m.Config for m in all_methods().values()}


def section_types() -> dict[str, type]:
    """Every section of a run configuration: the core ones, then the methods'."""
    return {**CORE_SECTIONS, **method_sections()}


def _default_sections() -> dict[str, Any]:
    return {name: kind() for name, kind in method_sections().items()}


@dataclass
class RunConfig:
    """One run's configuration. ``cfg.<method>`` (e.g. ``cfg.padim``) is that method's
    section, held in ``sections``."""

    method: str = field(default_factory=default_method)
    data: DataConfig = field(default_factory=DataConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sections: dict[str, Any] = field(default_factory=_default_sections, repr=False)

    def __getattr__(self, name: str) -> Any:
        sections = self.__dict__.get("sections")
        if sections is not None and name in sections:
            return sections[name]
        raise AttributeError(f"RunConfig has no attribute or section {name!r}")

    def with_section(self, name: str, value: Any) -> RunConfig:
        """A copy with method section ``name`` replaced by ``value``."""
        return dataclasses.replace(self, sections={**self.sections, name: value})

    def to_dict(self, own_section_only: bool = False) -> dict[str, Any]:
        """The configuration as plain data; ``own_section_only``: of the method sections,
        only the run's own method's (what a run folder records)."""
        core = {"method": self.method, "data": asdict(self.data),
                "teacher": asdict(self.teacher), "train": asdict(self.train)}
        sections = {k: asdict(v) for k, v in self.sections.items()
                    if not own_section_only or k == self.method}
        return _plain({**core, **sections})

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "config", note_renamed: bool = False
                  ) -> RunConfig:
        """``d`` as a configuration; ``note_renamed``: say when it uses an old section name
        (a file or a command line the user writes; the package's own records are read
        silently)."""
        d = _moved(d, source, note_renamed)
        method = str(d.get("method") or default_method())
        try:
            get_method(method)
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from None
        kinds = section_types()
        unknown = set(d) - set(kinds) - {"method"}
        if unknown:
            raise ValueError(f"{source}: unknown section(s) {sorted(unknown)}; "
                             f"expected method, {', '.join(kinds)} (a method's section is "
                             "there while its package is installed)")
        built = {name: _build(kind, d.get(name) or {}, f"{source}: {name}")
                 for name, kind in kinds.items()}
        core = {name: built.pop(name) for name in CORE_SECTIONS}
        return cls(method=method, **core, sections=built)

    def to_yaml(self, own_section_only: bool = False) -> str:
        return yaml.safe_dump(self.to_dict(own_section_only), sort_keys=False)

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        path = Path(path)
        try:
            d = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: not valid YAML/JSON ({exc})") from exc
        return cls.from_dict(d, source=str(path), note_renamed=True)

    def with_overrides(self, overrides: list[str]) -> RunConfig:
        """Apply ``section.key=value`` (or ``method=name``) overrides, values parsed as YAML."""
        d = self.to_dict()
        kinds, moved, renamed = section_types(), moved_keys(), renamed_sections()
        for item in overrides:
            key, sep, raw = item.partition("=")
            parts = key.strip().split(".")
            if sep and parts == ["method"]:
                d["method"] = str(_yaml_value(raw))
                continue
            if sep and len(parts) == 2 and tuple(parts) in moved:
                parts = list(moved[tuple(parts)])
            if sep and len(parts) == 2 and parts[0] in renamed:
                parts[0] = _renamed(parts[0], renamed, f"override {item!r}")
            if not sep or len(parts) != 2 or parts[0] not in kinds:
                raise ValueError(f"override {item!r}: expected section.key=value with section "
                                 f"{', '.join(kinds)} (e.g. multiad.se=false), or method=NAME")
            if parts[1] not in d[parts[0]]:
                raise ValueError(f"override {item!r}: {parts[0]} has no key {parts[1]!r}; "
                                 f"known: {', '.join(d[parts[0]]) or 'none'}")
            try:
                value = _yaml_value(raw)
            except ValueError as exc:
                raise ValueError(f"override {item!r}: {exc}") from None
            hint = _field_types(kinds[parts[0]])[parts[1]]
            if hint in (str, str | None) and value is not None and not isinstance(value, str):
                value = raw.strip()  # text as typed: a category "01" stays "01"
            d[parts[0]][parts[1]] = value
        return RunConfig.from_dict(d, source="overrides")

    def validate(self) -> RunConfig:
        """Check every value and return the concrete configuration: the method's reference
        backbone and schedule where this one leaves them open (``None``)."""
        spec = get_method(self.method)
        if self.data.kind not in DATA_KINDS:
            raise ValueError(f"data.kind {self.data.kind!r} unknown; use one of {DATA_KINDS}")
        backbone = self.teacher.backbone or spec.backbone
        if backbone not in BACKBONES:
            raise ValueError(f"teacher.backbone {backbone!r} unknown; use one of "
                             f"{', '.join(BACKBONES)}")
        stride = max(get_spec(backbone).feature_info.reductions)
        size = self.data.image_size
        if size < stride or size % stride:
            near = max(stride, round(size / stride) * stride)
            raise ValueError(f"data.image_size = {size}: expected a positive multiple of "
                             f"{stride}, the largest stride of {backbone} (e.g. {near})")
        t = self.train
        for key, value, low in (("lr", t.lr, None), ("eval_batch_size", t.eval_batch_size, 1),
                                ("checkpoint_every", t.checkpoint_every, 1),
                                ("seed", t.seed, 0)):  # low None: > 0
            if value is not None and (value <= 0 if low is None else value < low):
                bound = "> 0" if low is None else f"≥ {low}"
                raise ValueError(f"train.{key} = {value}: expected {bound}")
        if not 0.0 <= self.train.holdout < 1.0 or self.train.validate_every < 1:
            raise ValueError("train.holdout must be in [0, 1) and train.validate_every ≥ 1")
        if self.train.compile_mode not in COMPILE_MODES:
            raise ValueError(f"train.compile_mode {self.train.compile_mode!r} unknown; use one "
                             f"of {', '.join(COMPILE_MODES)} (the step's CUDA graph is the "
                             "project's own, so torch.compile's cudagraph modes are not offered)")
        schedule = {k: v if v is not None else spec.schedule.get(k)
                    for k, v in (("epochs", self.train.epochs),
                                 ("batch_size", self.train.batch_size),
                                 ("lr", self.train.lr), ("betas", self.train.betas))}
        if not spec.trained:
            schedule["epochs"] = 0  # a fitted method makes one pass over the data
        if schedule["betas"] is not None:
            schedule["betas"] = tuple(schedule["betas"])
        if (schedule["batch_size"] or 0) < 1 or (schedule["epochs"] or 0) < 0:
            raise ValueError("train.batch_size must be ≥ 1 and train.epochs ≥ 0")
        out = dataclasses.replace(
            self, teacher=dataclasses.replace(self.teacher, backbone=backbone),
            train=dataclasses.replace(self.train, **schedule))
        # a method's section may check itself and fill dataset-dependent defaults
        # (MKD's λ); every section is resolved so a switched method stays valid too
        for name, section in self.sections.items():
            if hasattr(section, "resolved"):
                out = out.with_section(name, section.resolved(out))
        return out


def resolve_auto_teacher(cfg: RunConfig) -> RunConfig:
    """``teacher.weights=auto`` made concrete before a run is written down: the configured
    backbone (the method's reference when none is set) with its pretrained weights when
    they can be had, else the pretrained offline backbone, with a warning
    (:func:`multiad.backbones.auto_backbone`). A random teacher is never chosen here."""
    if cfg.teacher.weights != "auto":
        return cfg
    cfg = cfg.validate()  # the method's reference backbone, when none is set
    backbone = auto_backbone(cfg.teacher.backbone)
    return dataclasses.replace(cfg, teacher=dataclasses.replace(
        cfg.teacher, backbone=backbone, weights="imagenet"))


_EXPONENT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+")


def _yaml_value(raw: str) -> Any:
    """An override's value as YAML reads it, and ``1e-3`` as the number it means (YAML 1.1
    reads an exponent without a dot as a string)."""
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ValueError(f"{raw!r} is not a plain YAML value ({first}); tags such as "
                         "!!python/... are never read") from None
    if isinstance(value, str) and _EXPONENT.fullmatch(value.strip()):
        return float(value)
    return value


def _moved(d: dict[str, Any], source: str, note: bool) -> dict[str, Any]:
    """``d`` with keys and sections of older configurations where they are today
    (``moved_keys``, ``renamed_sections``)."""
    d = {k: dict(v) if isinstance(v, dict) else v for k, v in d.items()}
    renamed = renamed_sections()
    for (old_sec, old_key), (new_sec, new_key) in moved_keys().items():
        if isinstance(d.get(old_sec), dict) and old_key in d[old_sec]:
            value = d[old_sec].pop(old_key)
            d.setdefault(new_sec, {})
            d[new_sec] = dict(d[new_sec] or {})
            d[new_sec].setdefault(new_key, value)
    for old in renamed:
        if old in d:
            new = _renamed(old, renamed, source, note)
            if new in d:
                raise ValueError(f"{source}: sections {old!r} and {new!r} are one section "
                                 f"({old!r} is its old name); keep {new!r} only")
            d[new] = d.pop(old)
    return d


def _renamed(old: str, renamed: dict[str, str], where: str, note: bool = True) -> str:
    new = renamed[old]
    if note:
        warnings.warn(f"{where}: section {old!r} is now called {new!r} (read as {new!r}; "
                      f"write {new}.KEY from now on)", FutureWarning, stacklevel=3)
    return new


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


@functools.cache
def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


@functools.cache
def _adapter(hint: Any) -> pydantic.TypeAdapter[Any]:
    # pydantic's lax mode: "3" is no int but 3.0 is; yes/no/true/false are bools; a number
    # where text is expected (a category "01" read by YAML as 1) is taken as its text
    return pydantic.TypeAdapter(hint, config=pydantic.ConfigDict(coerce_numbers_to_str=True))


def _type_name(hint: Any) -> str:
    return hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")


def _build(cls: type, d: dict[str, Any], where: str) -> Any:
    """A section from a mapping: every key known, every value of its field's type (lists
    become tuples where the field is a tuple); a wrong one is a one-line ``ValueError``
    naming the key, the value and the type expected."""
    names = [f.name for f in fields(cls)]
    unknown = set(d) - set(names)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; known: {', '.join(names)}")
    kwargs = {}
    for k, v in d.items():
        hint = _field_types(cls)[k]
        try:
            kwargs[k] = _adapter(hint).validate_python(v)
        except pydantic.ValidationError as exc:
            why = exc.errors()[0]["msg"]
            raise ValueError(f"{where}.{k} = {v!r}: expected {_type_name(hint)} ({why})"
                             ) from None
    return dataclasses.replace(cls(), **kwargs)
