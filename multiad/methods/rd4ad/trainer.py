"""RD4AD's training: Adam on the OCBE and the decoder (reference: lr 0.005, betas
(0.5, 0.999), batch 16, 200 epochs; encoder frozen in evaluation mode, OCBE and decoder in
training mode)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from multiad.backbones import build_backbone
from multiad.config import RunConfig
from multiad.engine.optim import execution
from multiad.engine.trainer import TrainerBase
from multiad.methods.rd4ad.loss import rd4ad_loss
from multiad.methods.rd4ad.torch_model import RD4ADModel


class RD4ADTrainer(TrainerBase):
    loss_keys: ClassVar[tuple[str, ...]] = ("loss",)

    def __init__(self, cfg: RunConfig, device: torch.device) -> None:
        cfg = cfg.validate()
        super().__init__(cfg, device)
        torch.manual_seed(cfg.train.seed)  # OCBE and decoder initialisation
        self.model = RD4ADModel(cfg, build_backbone(cfg.teacher.backbone,
                                                    cfg.teacher.weights)).to(device)
        self.teacher = self.model.teacher
        if device.type == "cuda" and cfg.train.channels_last:
            self.model.to(memory_format=torch.channels_last)
        params = [*self.model.ocbe.parameters(), *self.model.decoder.parameters()]
        self.opt = torch.optim.Adam(params, lr=cfg.train.lr, betas=tuple(cfg.train.betas),
                                    **execution(device))

    def modules(self) -> dict[str, nn.Module]:
        return {"ocbe": self.model.ocbe, "decoder": self.model.decoder}

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

    def inference_state(self) -> dict[str, Any]:
        return {"ocbe": self.model.ocbe.state_dict(), "decoder": self.model.decoder.state_dict()}
