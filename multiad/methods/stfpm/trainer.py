"""STFPM's training: one SGD step on the feature-pyramid loss per batch (paper §3.2;
reference: SGD lr 0.4, momentum 0.9, weight decay 1e-4, batch 32, 100 epochs, the student
in training mode, the teacher frozen in evaluation mode)."""

from __future__ import annotations

from typing import ClassVar

import torch

from multiad.config import RunConfig
from multiad.engine.optim import execution
from multiad.engine.trainer import TrainerBase
from multiad.methods.stfpm.loss import stfpm_loss


class STFPMTrainer(TrainerBase):
    loss_keys: ClassVar[tuple[str, ...]] = ("loss",)

    def __init__(self, cfg: RunConfig, device: torch.device) -> None:
        super().__init__(cfg, device)  # validated, seeded: T and the model on the device
        cfg = self.cfg
        p = cfg.stfpm
        self.opt = torch.optim.SGD(self.model.student.parameters(), lr=cfg.train.lr,
                                   momentum=p.momentum, weight_decay=p.weight_decay,
                                   **execution(device))


    def optimizers(self) -> dict[str, torch.optim.Optimizer | None]:
        return {"opt": self.opt}

    def step(self, x: torch.Tensor, t_feats: list[torch.Tensor] | None = None
             ) -> dict[str, torch.Tensor]:
        self.model.student.train()
        with self.autocast():
            t = self.model.pick(t_feats if t_feats is not None else self.teacher(x))
            s = self.model.pick(list(self.model.student(x)))
        loss = stfpm_loss(t, s)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"loss": loss.detach()}

