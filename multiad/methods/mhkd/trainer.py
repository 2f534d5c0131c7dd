"""MHKD's training (paper §IV-A; reference ``MHKD.py``): EfficientAD's shared rules
(:mod:`multiad.methods.efficientad.student_teacher`: the distilled teacher, its
normalisation, the held-out validation images, Adam 1e-4 with weight decay 1e-5 and the
rate ×0.1 after ``lr_drop_at`` of the steps, Eq. 9's quantiles after the last epoch), and
L_total (Eq. 8) per batch. The reference runs its test set every 10,000 steps (printing
only); here the last step is the model and the test set is never seen."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from multiad.methods.efficientad.student_teacher import PDNStudentTrainer
from multiad.methods.mhkd.loss import hybrid_loss


class MHKDTrainer(PDNStudentTrainer):
    loss_keys: ClassVar[tuple[str, ...]] = ("loss", "L_L", "L_G", "L_SG")

    def trainable(self) -> list[nn.Parameter]:
        return list(self.model.student.parameters())

    def step(self, x: torch.Tensor, t_feats: list[torch.Tensor] | None = None
             ) -> dict[str, torch.Tensor]:
        p = self.settings
        self.lr_now()
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
