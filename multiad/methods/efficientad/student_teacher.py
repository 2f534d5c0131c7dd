"""What every method with a distilled PDN teacher does the same way, EfficientAD's rules
(paper §3, §4; MHKD reuses them, its §III-A, §IV-A): the teacher distilled (or read from
the cache) before the run is seeded; its output normalised per channel on the training
images; validation images held out (the dataset's own validation split when it has one,
else a seeded 10 % of the training images); Adam (weight decay 1e-5) with the rate ×0.1
for the last 5 % of the steps; after the last step, the maps' quantiles on the validation
images. The last step is the model: the test set is never seen."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from multiad.backbones import FrozenBackbone
from multiad.config import RunConfig
from multiad.engine.optim import execution
from multiad.engine.trainer import TrainerBase
from multiad.methods.efficientad.anomaly_map import normalise, quantiles
from multiad.methods.efficientad.distill import distil, pdn_teacher


def holdout(n: int, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, validation) indices: a seeded random ``fraction`` of n (at least one, and
    at least one left to train on), each sorted."""
    k = min(max(1, round(fraction * n)), n - 1)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[k:].sort().values, perm[:k].sort().values


class PDNStudentModel(nn.Module):
    """A frozen PDN teacher, its per-channel mean/std on the training images, and the two
    maps' validation quantiles (NaN until calibrated). Subclasses add the student and
    ``raw_maps``."""

    def __init__(self, cfg: RunConfig, teacher: FrozenBackbone, out_channels: int) -> None:
        super().__init__()
        self.cfg, self.teacher = cfg, teacher
        self.register_buffer("t_mean", torch.zeros(1, out_channels, 1, 1))
        self.register_buffer("t_std", torch.ones(1, out_channels, 1, 1))
        self.register_buffer("q", torch.full((2, 2), float("nan")))

    def teacher_features(self, t_raw: torch.Tensor) -> torch.Tensor:
        """The teacher's output normalised per channel."""
        return (t_raw.float() - self.t_mean) / self.t_std

    def raw_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The two maps (N×1×h×w each) before the quantile normalisation."""
        raise NotImplementedError

    def normalised_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The two maps, quantile-normalised once calibrated (float32)."""
        first, second = self.raw_maps(x.float())
        if not torch.isnan(self.q).any():
            first, second = normalise(first, self.q[0].tolist()), normalise(second,
                                                                            self.q[1].tolist())
        return [first, second]


class PDNStudentTrainer(TrainerBase):
    """The shared training of a student against a distilled PDN teacher. Subclasses give
    ``trainable`` (the parameters Adam updates) and ``step``; ``lr_now`` sets the rate."""

    def __init__(self, cfg: RunConfig, device: torch.device) -> None:
        # the PDN teacher is distilled (or read from the cache) before the run is seeded
        self.distilled, self.teacher_meta = distil(cfg.validate(), device)
        super().__init__(cfg, device)  # validated, seeded: the PDN, then the student
        self.settings = self.method.settings(self.cfg)
        self.lr = self.settings.lr or self.cfg.train.lr
        self.opt = torch.optim.Adam(self.trainable(), lr=self.lr,
                                    betas=tuple(self.cfg.train.betas), weight_decay=1e-5,
                                    **execution(device))
        self.steps_done, self.total_steps = 0, 1
        self.validation: torch.Tensor | None = None
        self.validation_source = ""

    def trainable(self) -> list[nn.Parameter]:
        raise NotImplementedError

    def build_teacher(self) -> FrozenBackbone:
        return pdn_teacher(self.cfg, self.distilled, self.teacher_meta)

    def optimizers(self) -> dict[str, torch.optim.Optimizer | None]:
        return {"opt": self.opt}

    def lr_now(self) -> None:
        """The step's learning rate: ×0.1 after ``lr_drop_at`` of the planned steps."""
        drop = self.steps_done >= int(self.settings.lr_drop_at * self.total_steps)
        for group in self.opt.param_groups:
            group["lr"] = self.lr * (0.1 if drop else 1.0)

    @torch.no_grad()
    def teacher_forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The PDN in float32 in training as at test and in ``begin``'s normalisation (a
        bf16 output would be normalised by float32 statistics); it is small."""
        with torch.autocast(x.device.type, enabled=False):
            return self.teacher(x.float())

    def teacher_cache_key(self) -> tuple[Any, ...]:
        return ("pdn", self.teacher.source.sha256, self.settings.validation_fraction,
                self.cfg.train.seed)

    def _validation_split(self, progress: bool) -> torch.Tensor | None:
        """The normal images of the dataset's own validation split, when it has any."""
        from multiad.data import load_dataset, load_split

        d = self.cfg.data
        if not any(s.label == 0 for s in load_dataset(d.kind, d.root, d.category).valid):
            return None
        _, split = load_split(self.cfg.data, "valid", progress)
        return split.images[split.labels == 0]

    @torch.no_grad()
    def begin(self, images_u8: torch.Tensor, progress: bool = True) -> torch.Tensor:
        p, bs = self.settings, self.cfg.train.batch_size
        own = self._validation_split(progress)
        if own is not None:
            train, self.validation = images_u8, own.to(images_u8.device)
            self.validation_source = f"the dataset's validation split ({len(own)} normal images)"
        else:
            if len(images_u8) < 2:
                from multiad.data import DataError

                raise DataError(f"{self.method.title} holds out validation images from the "
                                f"training images and has {len(images_u8)}: give it at "
                                "least 2 (or a dataset with its own validation split)")
            tr, va = holdout(len(images_u8), p.validation_fraction, self.cfg.train.seed)
            tr, va = tr.to(images_u8.device), va.to(images_u8.device)
            train, self.validation = images_u8[tr], images_u8[va]
            self.validation_source = (f"{len(va)} of the {len(images_u8)} training images "
                                      f"held out (fraction {p.validation_fraction}, seed "
                                      f"{self.cfg.train.seed})")
        # the teacher_normalization of the reference codes, image by image: the mean of the
        # images' channel means, then the mean of their mean squared deviations
        means, outs = [], []
        for i in range(0, len(train), bs):
            t = self.teacher(self.prepare(train[i:i + bs]))[0].float()
            outs.append(t.cpu())
            means.append(t.mean(dim=(2, 3)))
        mean = torch.cat(means).mean(0)[None, :, None, None]
        var = torch.cat([((t.to(mean.device) - mean) ** 2).mean(dim=(2, 3)) for t in outs])
        self.model.t_mean.copy_(mean)
        self.model.t_std.copy_(var.mean(0).sqrt()[None, :, None, None])
        self.total_steps = self.cfg.train.epochs * math.ceil(len(train) / bs)
        return train

    def state(self, epoch: int, losses: list[dict[str, float]]) -> dict[str, Any]:
        return {**super().state(epoch, losses), "steps_done": self.steps_done,
                "teacher_sha256": self.teacher.source.sha256}

    def load_state(self, state: dict[str, Any]) -> tuple[int, list[dict[str, float]]]:
        if state.get("teacher_sha256") != self.teacher.source.sha256:
            raise RuntimeError(
                f"{self.method.title}'s checkpoint was trained against another distilled "
                f"teacher (PDN sha256 {state.get('teacher_sha256')}, now "
                f"{self.teacher.source.sha256}: the teacher cache was removed or moved and "
                "the teacher distilled again). Delete the run's checkpoint.pt to train it "
                "anew against this teacher.")
        out = super().load_state(state)
        self.steps_done = int(state["steps_done"])
        return out

    @torch.no_grad()
    def calibrate(self) -> dict[str, Any]:
        """The two maps' quantiles over every pixel of the validation maps."""
        assert self.validation is not None, "begin() sets the validation images"
        p, bs = self.settings, self.cfg.train.eval_batch_size
        model = self.model.eval()
        first, second = [], []
        for i in range(0, len(self.validation), bs):
            x = self.prepare(self.validation[i:i + bs])
            with torch.autocast(x.device.type, enabled=False):  # as predict: float32 maps
                a, b = model.raw_maps(x.float())
            first.append(a.float().cpu())
            second.append(b.float().cpu())
        qs = [quantiles(torch.cat(m), p.q_start, p.q_end) for m in (first, second)]
        model.q.copy_(torch.tensor(qs, dtype=torch.float32))
        return {**{name: list(q) for name, q in zip(self.method.layer_names, qs, strict=True)},
                "validation": self.validation_source}

    def finish(self, images_u8: torch.Tensor, progress: bool = True) -> dict[str, Any]:
        quant = self.calibrate()
        return {**super().finish(images_u8, progress), "quantiles": quant,
                f"{self.method.name}_teacher": self.teacher_meta}

    def inference_state(self) -> dict[str, Any]:
        m = self.model
        return {**super().inference_state(), "teacher": m.teacher.body.pdn.state_dict(),
                "norm": {"t_mean": m.t_mean.cpu(), "t_std": m.t_std.cpu(), "q": m.q.cpu()},
                "teacher_meta": self.teacher_meta}
