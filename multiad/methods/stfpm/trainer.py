"""STFPM's training: one SGD step on the feature-pyramid loss per batch (paper §3.2;
reference: SGD lr 0.4, momentum 0.9, weight decay 1e-4, batch 32, 100 epochs, the student
in training mode, the teacher frozen in evaluation mode)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from multiad.backbones import build_backbone
from multiad.config import RunConfig
from multiad.engine.optim import execution
from multiad.engine.trainer import TrainerBase
from multiad.methods.stfpm.loss import stfpm_loss
from multiad.methods.stfpm.torch_model import STFPMModel


class STFPMTrainer(TrainerBase):
    loss_keys: ClassVar[tuple[str, ...]] = ("loss",)

    def __init__(self, cfg: RunConfig, device: torch.device) -> None:
        cfg = cfg.validate()
        super().__init__(cfg, device)
        torch.manual_seed(cfg.train.seed)  # the student's initialisation
        self.model = STFPMModel(cfg, build_backbone(cfg.teacher.backbone,
                                                    cfg.teacher.weights)).to(device)
        self.teacher = self.model.teacher
        if device.type == "cuda" and cfg.train.channels_last:
            self.model.to(memory_format=torch.channels_last)
        p = cfg.stfpm
        self.opt = torch.optim.SGD(self.model.student.parameters(), lr=cfg.train.lr,
                                   momentum=p.momentum, weight_decay=p.weight_decay,
                                   **execution(device))

    def modules(self) -> dict[str, nn.Module]:
        return {"student": self.model.student}

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

    def inference_state(self) -> dict[str, Any]:
        return {"student": self.model.student.state_dict()}
