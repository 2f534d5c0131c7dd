"""Skip-TS's training (paper §IV-B; reference ``train_and_test.py``): Adam on S-Net only
(lr 0.005, betas (0.5, 0.999), batch 16, 200 epochs), T-Net frozen in evaluation mode,
S-Net in training mode; L_DRKD (Eq. 5) per batch. The reference evaluates on the test set
every 10 epochs and prints the best; here the last epoch is the model, as the paper
reports."""

from __future__ import annotations

from typing import ClassVar

import torch

from multiad.config import RunConfig
from multiad.engine.optim import execution
from multiad.engine.trainer import TrainerBase
from multiad.methods.skip_ts.loss import drkd_loss


class SkipTSTrainer(TrainerBase):
    loss_keys: ClassVar[tuple[str, ...]] = ("loss", "sim", "mac")

    def __init__(self, cfg: RunConfig, device: torch.device) -> None:
        super().__init__(cfg, device)  # validated, seeded: T and the model on the device
        cfg = self.cfg
        self.opt = torch.optim.Adam(self.model.decoder.parameters(), lr=cfg.train.lr,
                                    betas=tuple(cfg.train.betas), **execution(device))


    def optimizers(self) -> dict[str, torch.optim.Optimizer | None]:
        return {"opt": self.opt}

    def step(self, x: torch.Tensor, t_feats: list[torch.Tensor] | None = None
             ) -> dict[str, torch.Tensor]:
        p = self.cfg.skip_ts
        self.model.decoder.train()
        with self.autocast():
            feats = t_feats if t_feats is not None else self.teacher(x)
            dec = self.model.reconstruct(feats)
        loss, sim, mac = drkd_loss(feats[:3], dec, p.alpha, p.beta, p.similarity, p.mac)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"loss": loss.detach(), "sim": sim.detach(), "mac": mac.detach()}

