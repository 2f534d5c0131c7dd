"""SimpleNet's training (paper §3.5; reference ``_train_discriminator``): per batch, the
adapted patch features and their noisy copies go through D together (one batch-norm
batch), and one backward pass of the truncated L1 loss steps both the adaptor (AdamW) and
D (Adam). The reference trains 40 × 4 epochs and evaluates on the *test* set after every
4, keeping the best test epoch; here the last epoch is the model."""

from __future__ import annotations

from typing import ClassVar

import torch

from multiad.config import RunConfig
from multiad.engine.optim import execution
from multiad.engine.trainer import TrainerBase
from multiad.methods.simplenet.loss import synthetic_anomalies, truncated_l1_loss


class SimpleNetTrainer(TrainerBase):
    # p_true / p_fake: shares of normal / anomalous features already beyond the margin
    loss_keys: ClassVar[tuple[str, ...]] = ("loss", "true_loss", "fake_loss", "p_true",
                                            "p_fake")

    def __init__(self, cfg: RunConfig, device: torch.device) -> None:
        super().__init__(cfg, device)  # validated, seeded: T and the model on the device
        cfg = self.cfg
        p = cfg.simplenet
        self.opt_d = torch.optim.Adam(self.model.discriminator.parameters(), lr=cfg.train.lr,
                                      betas=tuple(cfg.train.betas),
                                      weight_decay=p.weight_decay, **execution(device))
        self.opt_g = (torch.optim.AdamW(self.model.adaptor.parameters(), lr=p.adaptor_lr,
                                        weight_decay=p.adaptor_weight_decay,
                                        **execution(device)) if p.adaptor else None)


    def optimizers(self) -> dict[str, torch.optim.Optimizer | None]:
        return {"opt_d": self.opt_d, "opt_g": self.opt_g}

    @torch.no_grad()
    def teacher_forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """T's features in float32 whatever ``train.amp`` says (also for the engine's
        cache): the noise σ is far below bf16's rounding of the features, and ``predict``
        scores float32 features."""
        with torch.autocast(x.device.type, enabled=False):
            return self.teacher(x.float())

    def step(self, x: torch.Tensor, t_feats: list[torch.Tensor] | None = None
             ) -> dict[str, torch.Tensor]:
        m, p = self.model, self.cfg.simplenet
        m.adaptor.train()
        m.discriminator.train()
        with torch.no_grad():
            f, _ = m.features(t_feats if t_feats is not None else self.teacher_forward(x))
        q = m.adaptor(f)
        fake = synthetic_anomalies(q, p.noise_std)
        scores = m.discriminator(torch.cat([q, fake]))
        true_s, fake_s = scores[:len(q)], scores[len(q):]
        true_loss, fake_loss = truncated_l1_loss(true_s, fake_s, p.margin)
        loss = true_loss + fake_loss
        self.opt_d.zero_grad(set_to_none=True)
        if self.opt_g is not None:
            self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_d.step()
        if self.opt_g is not None:
            self.opt_g.step()
        with torch.no_grad():
            return {"loss": loss.detach(), "true_loss": true_loss.detach(),
                    "fake_loss": fake_loss.detach(),
                    "p_true": (true_s >= p.margin).float().mean(),
                    "p_fake": (fake_s <= -p.margin).float().mean()}

