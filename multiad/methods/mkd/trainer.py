"""MKD's training (paper §3; reference ``train.py``): Adam (lr 1e-3, default betas, no
weight decay) on the cloner, batch 64, the loss of Eq. 3 at the four taps, the cloner in
training mode (batch norm), the teacher frozen. The reference evaluates on the *test* set
every 10 epochs; here nothing looks at the test set before the last epoch."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from multiad.config import RunConfig
from multiad.engine.optim import execution
from multiad.engine.trainer import TrainerBase
from multiad.methods.mkd.loss import mkd_loss


class MKDTrainer(TrainerBase):
    loss_keys: ClassVar[tuple[str, ...]] = ("loss", "l_dir", "l_val")

    def __init__(self, cfg: RunConfig, device: torch.device) -> None:
        super().__init__(cfg, device)  # validated, seeded: T and the model on the device
        cfg = self.cfg
        self.opt = torch.optim.Adam(self.model.student.parameters(), lr=cfg.train.lr,
                                    betas=tuple(cfg.train.betas), **execution(device))


    def optimizers(self) -> dict[str, torch.optim.Optimizer | None]:
        return {"opt": self.opt}

    @torch.no_grad()
    def teacher_forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """T's features of the networks' input (MKD's own, ``MKDModel.net_input``)."""
        with self.autocast():
            return self.teacher(self.model.net_input(x))

    def teacher_cache_key(self) -> tuple[Any, ...]:
        """The input (``mkd.input``) changes T's features: part of the cache's key."""
        return (*super().teacher_cache_key(), self.cfg.mkd.input)

    def step(self, x: torch.Tensor, t_feats: list[torch.Tensor] | None = None
             ) -> dict[str, torch.Tensor]:
        m, taps = self.model, self.cfg.mkd.loss_taps
        m.student.train()
        t = t_feats if t_feats is not None else self.teacher_forward(x)
        with self.autocast():
            s = m.student(m.net_input(x))
        loss, l_dir, l_val = mkd_loss(m.taps(s, taps), m.taps(t, taps), float(self.cfg.mkd.lamda))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"loss": loss.detach(), "l_dir": l_dir.detach(), "l_val": l_val.detach()}

