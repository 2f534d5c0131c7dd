"""Run configuration: every switch of METHOD_SPEC in one serialisable object.

A ``RunConfig`` has three parts (data, model, train); it round-trips through YAML/JSON,
rejects unknown keys with a message that names them, and takes dotted overrides such as
``model.se=false`` (values parsed as YAML) from the command line.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml


class RunConfigMismatch(RuntimeError):
    """A run folder already holds a run made with another configuration."""


DATA_KINDS = ("synthetic", "mvtec", "brain", "liver", "retina", "folder")

# torch.compile modes that leave CUDA graphs to ``train.cuda_graph`` (multiad.cuda_graph)
COMPILE_MODES = ("default", "max-autotune-no-cudagraphs")
# Model switches that act after training only (Ψ, map fusion, smoothing): a trained student
# is evaluated under each of them without training again (the ablation's MFF on/off, σ, ...)
EVAL_ONLY_MODEL_KEYS = ("mff", "mff_relu", "map_fusion", "sigma")


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
class ModelConfig:
    """Architecture and map switches (METHOD_SPEC §2–§7); Table 4 = se, discriminator, mff."""

    # the frozen teacher (multiad.backbones): the paper's WRN-50-2, or another backbone, e.g.
    # the pretrained offline efficientnet_lite0; the student is built for its family
    backbone: str = "wide_resnet50_2"
    # "imagenet" (the backbone's pretrained file), a file path, "random" (tests only) or
    # "auto": the backbone's pretrained file if obtainable, else the pretrained offline
    # backbone (resolved before a run is written down). Every result records the teacher.
    teacher_weights: str = "imagenet"
    se: bool = True
    se_reduction: int = 16
    dilation_rates: tuple[int, int, int, int] = (1, 2, 4, 8)
    fusion: bool = True
    discriminator: bool = True
    d_stages: tuple[int, ...] = (4,)
    d_dropout: float = 0.3
    lambda_adv: float = 0.1
    mff: bool = True
    mff_relu: bool = True
    map_fusion: str = "sum"  # "sum" (Eq. 14) or "product" (anomalib STFPM / BMAD RD)
    sigma: float = 4.0


@dataclass
class TrainConfig:
    """Optimisation (paper §4, Algorithm 1) and execution settings."""

    epochs: int = 250
    batch_size: int = 16
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
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
    checkpoint_every: int = 1  # epochs between checkpoints (the last epoch always saves)
    # the training state (weights + Adam moments, ~1 GB for WRN-50) is needed only to resume
    # or to extend a run; by default it is deleted once model.pt is written
    keep_checkpoint: bool = False


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return _plain(asdict(self))

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "config") -> RunConfig:
        unknown = set(d) - {"data", "model", "train"}
        if unknown:
            raise ValueError(f"{source}: unknown section(s) {sorted(unknown)}; "
                             "expected data, model, train")
        return cls(data=_build(DataConfig, d.get("data") or {}, f"{source}: data"),
                   model=_build(ModelConfig, d.get("model") or {}, f"{source}: model"),
                   train=_build(TrainConfig, d.get("train") or {}, f"{source}: train"))

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        path = Path(path)
        try:
            d = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: not valid YAML/JSON ({exc})") from exc
        return cls.from_dict(d, source=str(path))

    def with_overrides(self, overrides: list[str]) -> RunConfig:
        """Apply ``section.key=value`` overrides (value parsed as YAML)."""
        d = self.to_dict()
        for item in overrides:
            key, sep, raw = item.partition("=")
            parts = key.strip().split(".")
            if not sep or len(parts) != 2 or parts[0] not in d:
                raise ValueError(f"override {item!r}: expected section.key=value with section "
                                 "data, model or train (e.g. model.se=false)")
            if parts[1] not in d[parts[0]]:
                raise ValueError(f"override {item!r}: {parts[0]} has no key {parts[1]!r}; "
                                 f"known: {', '.join(d[parts[0]])}")
            d[parts[0]][parts[1]] = yaml.safe_load(raw)
        return RunConfig.from_dict(d, source="overrides")

    def validate(self) -> RunConfig:
        if self.data.kind not in DATA_KINDS:
            raise ValueError(f"data.kind {self.data.kind!r} unknown; use one of {DATA_KINDS}")
        from multiad.backbones import BACKBONES

        if self.model.backbone not in BACKBONES:
            raise ValueError(f"model.backbone {self.model.backbone!r} unknown; use one of "
                             f"{', '.join(BACKBONES)}")
        if self.model.map_fusion not in ("sum", "product"):
            raise ValueError("model.map_fusion must be 'sum' or 'product'")
        if any(s not in (1, 2, 3, 4) for s in self.model.d_stages):
            raise ValueError("model.d_stages lists stages 1..4")
        if self.train.compile_mode not in COMPILE_MODES:
            raise ValueError(f"train.compile_mode {self.train.compile_mode!r} unknown; use one "
                             f"of {', '.join(COMPILE_MODES)} (the step's CUDA graph is the "
                             "project's own, so torch.compile's cudagraph modes are not offered)")
        if self.train.batch_size < 1 or self.train.epochs < 0:
            raise ValueError("train.batch_size must be ≥ 1 and train.epochs ≥ 0")
        return self


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def _build(cls: type, d: dict[str, Any], where: str) -> Any:
    names = {f.name: f for f in fields(cls)}
    unknown = set(d) - set(names)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; known: {', '.join(names)}")
    kwargs = {}
    for k, v in d.items():
        default = getattr(cls(), k)
        kwargs[k] = tuple(v) if isinstance(default, tuple) and v is not None else v
    return dataclasses.replace(cls(), **kwargs)
