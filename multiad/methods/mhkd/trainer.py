"""MHKD's training (paper §IV-A; reference ``MHKD.py``): the teacher distilled (or taken
from the cache) first, its outputs normalised per channel on the training images, then
Adam on the student (lr 1e-4, weight decay 1e-5, ×0.1 after ``lr_drop_at`` of the steps),
L_total (Eq. 8) per batch; after the last epoch, Eq. 9's quantiles on the validation
images. The reference runs its test set every 10,000 steps (printing only); here the last
step is the model and the test set is never seen."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch

from multiad.backbones import FrozenBackbone
from multiad.config import RunConfig
from multiad.engine.optim import execution
from multiad.engine.trainer import TrainerBase
from multiad.methods.mhkd.anomaly_map import quantiles
from multiad.methods.mhkd.distill import distil, pdn_teacher
from multiad.methods.mhkd.loss import hybrid_loss


def holdout(n: int, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, validation) indices: a seeded random ``fraction`` of n (at least one, and
    at least one left to train on), each sorted."""
    k = min(max(1, round(fraction * n)), n - 1)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[k:].sort().values, perm[:k].sort().values


class MHKDTrainer(TrainerBase):
    loss_keys: ClassVar[tuple[str, ...]] = ("loss", "L_L", "L_G", "L_SG")

    def __init__(self, cfg: RunConfig, device: torch.device) -> None:
        # the PDN teacher is distilled (or read from the cache) before the run is seeded
        self.distilled, self.teacher_meta = distil(cfg.validate(), device)
        super().__init__(cfg, device)  # validated, seeded: the PDN, then the student
        cfg = self.cfg
        self.lr = cfg.mhkd.lr or cfg.train.lr
        self.opt = torch.optim.Adam(self.model.student.parameters(), lr=self.lr,
                                    betas=tuple(cfg.train.betas), weight_decay=1e-5,
                                    **execution(device))
        self.steps_done, self.total_steps = 0, 1
        self.validation: torch.Tensor | None = None
        self.validation_source = ""

    @torch.no_grad()
    def teacher_forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The PDN in float32 in training as at test and in ``begin``'s normalisation (a
        bf16 f_t would be normalised by float32 statistics); it is small."""
        with torch.autocast(x.device.type, enabled=False):
            return self.teacher(x.float())

    def teacher_cache_key(self) -> tuple[Any, ...]:
        p = self.cfg.mhkd
        return ("mhkd_pdn", self.teacher.source.sha256, p.validation_fraction,
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
        p, bs = self.cfg.mhkd, self.cfg.train.batch_size
        own = self._validation_split(progress)
        if own is not None:
            train, self.validation = images_u8, own.to(images_u8.device)
            self.validation_source = f"the dataset's validation split ({len(own)} normal images)"
        else:
            if len(images_u8) < 2:
                from multiad.data import DataError

                raise DataError(f"MHKD holds out validation images from the training images "
                                f"and has {len(images_u8)}: give it at least 2 (or a dataset "
                                "with its own validation split)")
            tr, va = holdout(len(images_u8), p.validation_fraction, self.cfg.train.seed)
            tr, va = tr.to(images_u8.device), va.to(images_u8.device)
            train, self.validation = images_u8[tr], images_u8[va]
            self.validation_source = (f"{len(va)} of the {len(images_u8)} training images "
                                      f"held out (fraction {p.validation_fraction}, seed "
                                      f"{self.cfg.train.seed})")
        # the reference's teacher_normalization, image by image: the mean of the images'
        # channel means, then the mean of their mean squared deviations
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

    def build_teacher(self) -> FrozenBackbone:
        return pdn_teacher(self.cfg, self.distilled, self.teacher_meta)

    def optimizers(self) -> dict[str, torch.optim.Optimizer | None]:
        return {"opt": self.opt}

    def state(self, epoch: int, losses: list[dict[str, float]]) -> dict[str, Any]:
        return {**super().state(epoch, losses), "steps_done": self.steps_done,
                "teacher_sha256": self.teacher.source.sha256}

    def load_state(self, state: dict[str, Any]) -> tuple[int, list[dict[str, float]]]:
        if state.get("teacher_sha256") != self.teacher.source.sha256:
            raise RuntimeError(
                "MHKD's checkpoint was trained against another distilled teacher (PDN sha256 "
                f"{state.get('teacher_sha256')}, now {self.teacher.source.sha256}: the teacher "
                "cache was removed or moved and the teacher distilled again). Delete the "
                "run's checkpoint.pt to train it anew against this teacher.")
        out = super().load_state(state)
        self.steps_done = int(state["steps_done"])
        return out

    def step(self, x: torch.Tensor, t_feats: list[torch.Tensor] | None = None
             ) -> dict[str, torch.Tensor]:
        p = self.cfg.mhkd
        drop = self.steps_done >= int(p.lr_drop_at * self.total_steps)
        for group in self.opt.param_groups:
            group["lr"] = self.lr * (0.1 if drop else 1.0)
        self.model.student.train()
        t_raw = t_feats[0] if t_feats is not None else self.teacher_forward(x)[0]
        with self.autocast():
            f_l, f_g, f_s = self.model.student(x)
        terms = hybrid_loss(self.model.teacher_features(t_raw), f_l, f_g, f_s,
                            p.alpha, p.beta, p.gamma)
        self.opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        self.opt.step()
        self.steps_done += 1
        return {k: v.detach() for k, v in terms.items()}

    @torch.no_grad()
    def calibrate(self, progress: bool = True) -> dict[str, Any]:  # noqa: ARG002
        """Eq. 9's quantiles of A_s and A_g over every pixel of the validation maps."""
        assert self.validation is not None, "begin() sets the validation images"
        p, bs = self.cfg.mhkd, self.cfg.train.eval_batch_size
        model = self.model.eval()
        maps_s, maps_g = [], []
        for i in range(0, len(self.validation), bs):
            x = self.prepare(self.validation[i:i + bs])
            with torch.autocast(x.device.type, enabled=False):  # as predict: float32 maps
                a_s, a_g = model.raw_maps(x.float())
            maps_s.append(a_s.float().cpu())
            maps_g.append(a_g.float().cpu())
        q_s = quantiles(torch.cat(maps_s), p.q_start, p.q_end)
        q_g = quantiles(torch.cat(maps_g), p.q_start, p.q_end)
        model.q.copy_(torch.tensor([q_s, q_g], dtype=torch.float32))
        return {"structural": list(q_s), "logical": list(q_g),
                "validation": self.validation_source}

    def finish(self, images_u8: torch.Tensor, progress: bool = True) -> dict[str, Any]:
        quant = self.calibrate(progress)
        return {**super().finish(images_u8, progress), "quantiles": quant,
                "mhkd_teacher": self.teacher_meta}

    def inference_state(self) -> dict[str, Any]:
        m = self.model
        return {**super().inference_state(), "teacher": m.teacher.body.pdn.state_dict(),
                "norm": {"t_mean": m.t_mean.cpu(), "t_std": m.t_std.cpu(), "q": m.q.cpu()},
                "teacher_meta": self.teacher_meta}
