"""RD4AD's training: Adam on the OCBE and the decoder (reference: lr 0.005, betas
(0.5, 0.999), batch 16, 200 epochs; encoder frozen in evaluation mode, OCBE and decoder in
training mode)."""

from __future__ import annotations

from typing import ClassVar

import torch

from multiad.config import RunConfig
from multiad.engine.optim import execution
from multiad.engine.trainer import TrainerBase
from multiad.methods.rd4ad.loss import rd4ad_loss


class RD4ADTrainer(TrainerBase):
    loss_keys: ClassVar[tuple[str, ...]] = ("loss",)

    def __init__(self, cfg: RunConfig, device: torch.device) -> None:
        super().__init__(cfg, device)  # validated, seeded: T and the model on the device
        cfg = self.cfg
        params = [*self.model.ocbe.parameters(), *self.model.decoder.parameters()]
        self.opt = torch.optim.Adam(params, lr=cfg.train.lr, betas=tuple(cfg.train.betas),
                                    **execution(device))


    def optimizers(self) -> dict[str, torch.optim.Optimizer | None]:
        return {"opt": self.opt}

    def step(self, x: torch.Tensor, t_feats: list[torch.Tensor] | None = None
             ) -> dict[str, torch.Tensor]:
        self.model.ocbe.train()
        self.model.decoder.train()
        with self.autocast():
            enc = self.model.pick(t_feats if t_feats is not None else self.teacher(x))
            dec = self.model.reconstruct(enc)
        loss = rd4ad_loss(enc, dec)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"loss": loss.detach()}

