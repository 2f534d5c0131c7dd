"""EfficientAD's training (paper §3, §4): per step, the hard feature loss and the penalty
(the student against the teacher; a batch of natural photographs), and the autoencoder
and the student's second half on an augmented copy of the batch; Adam on the student and
the autoencoder (shared rules: :mod:`multiad.methods.efficientad.student_teacher`)."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from multiad.config import RunConfig
from multiad.data import normalize
from multiad.methods.efficientad.augment import colour_jitter
from multiad.methods.efficientad.distill_data import PairBatches, image_files
from multiad.methods.efficientad.loss import hard_feature_loss, mse, penalty_loss
from multiad.methods.efficientad.student_teacher import PDNStudentTrainer


class EfficientADTrainer(PDNStudentTrainer):
    loss_keys: ClassVar[tuple[str, ...]] = ("loss", "L_hard", "L_penalty", "L_AE", "L_STAE")

    def __init__(self, cfg: RunConfig, device: torch.device) -> None:
        super().__init__(cfg, device)
        p = self.settings
        # the penalty's photographs: the distillation's (seeded per step, so a resumed
        # run draws what an uninterrupted one would)
        self.photos = PairBatches(image_files(p.distill_root), self.cfg.data.image_size,
                                  self.cfg.train.seed + 1, self.cfg.train.batch_size,
                                  with_source=False) if p.penalty else None

    def trainable(self) -> list[nn.Parameter]:
        return [*self.model.student.parameters(), *self.model.autoencoder.parameters()]

    def step(self, x: torch.Tensor, t_feats: list[torch.Tensor] | None = None
             ) -> dict[str, torch.Tensor]:
        p, m, c = self.settings, self.model, self.settings.out_channels
        self.lr_now()
        m.student.train()
        m.autoencoder.train()
        t = m.teacher_features(t_feats[0] if t_feats is not None else self.teacher_forward(x)[0])
        x_aug = self.augmented(x)
        t_aug = m.teacher_features(self.teacher_forward(x_aug)[0])
        with self.autocast():
            s = m.student(x)
            s_aug = m.student(x_aug)
            a_aug = m.autoencoder(x_aug)
        terms = {"L_hard": hard_feature_loss(t, s[:, :c], p.p_hard),
                 "L_AE": mse(t_aug, a_aug), "L_STAE": mse(a_aug, s_aug[:, c:])}
        terms["L_penalty"] = torch.zeros((), device=x.device)
        if self.photos is not None:
            photos = self.prepare_photos(self.photos[self.steps_done][0])
            with self.autocast():
                terms["L_penalty"] = penalty_loss(m.student(photos)[:, :c])
        terms["loss"] = terms["L_hard"] + terms["L_penalty"] + terms["L_AE"] + terms["L_STAE"]
        self.opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        self.opt.step()
        self.steps_done += 1
        return {k: v.detach() for k, v in terms.items()}

    def augmented(self, x: torch.Tensor) -> torch.Tensor:
        """The normalised batch ``x`` with one colour change per image, normalised again."""
        t = self.teacher
        mean = torch.tensor(t.mean, device=x.device)[:, None, None]
        std = torch.tensor(t.std, device=x.device)[:, None, None]
        return normalize(colour_jitter((x.float() * std + mean).clamp(0, 1)), t.mean, t.std
                         ).contiguous(memory_format=self.memory_format())

    def prepare_photos(self, photos: torch.Tensor) -> torch.Tensor:
        """Photographs in [0, 1] → the teacher's normalised input on the device."""
        t = self.teacher
        x = normalize(photos.to(self.device), t.mean, t.std)
        return x.contiguous(memory_format=self.memory_format())
