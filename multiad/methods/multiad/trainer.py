"""Multi-AD's training, Algorithm 1: per batch a D step (S frozen), then an S step (D frozen).

Adam for S and D (paper §4: lr 1e-3, batch 16, 250 epochs); T is never updated. After the
last epoch Ψ (MFF) is calibrated on the training maps (METHOD_SPEC §7).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn
from tqdm.auto import tqdm

from multiad.config import RunConfig
from multiad.engine.optim import allow_recompiles, execution
from multiad.engine.trainer import TrainerBase, score_summary
from multiad.gaussian import gaussian_blur
from multiad.methods.multiad.anomaly_map import fuse_maps, image_score
from multiad.methods.multiad.discriminator import FeatureDiscriminator
from multiad.methods.multiad.loss import (
    adversarial_loss,
    balanced_lambda,
    discriminator_loss,
    distillation_loss,
    l2_normalize,
    student_loss,
)
from multiad.methods.multiad.mff import MapMoments
from multiad.methods.multiad.torch_model import MultiADModel


class MultiADTrainer(TrainerBase):
    """Everything Algorithm 1 updates — S, the discriminators D and their optimisers."""

    loss_keys: ClassVar[tuple[str, ...]] = ("L_G", "L_adv", "L_D", "L_S", "lambda")
    graph_capturable: ClassVar[bool] = True  # CUDA tests: tests/test_train_cuda.py

    def __init__(self, cfg: RunConfig, device: torch.device) -> None:
        super().__init__(cfg, device)  # validated, seeded: T, then S (and Ψ) on the device
        cfg, p = self.cfg, self.cfg.multiad
        info = self.teacher.feature_info
        sides = info.spatial(cfg.data.image_size)
        self.discriminators = nn.ModuleDict()
        if p.discriminator:
            for s in p.d_stages:
                self.discriminators[str(s)] = FeatureDiscriminator(
                    info.channels[s - 1], (sides[s - 1], sides[s - 1]), dropout=p.d_dropout)
        self.discriminators.to(device, memory_format=self.memory_format())
        adam = {"lr": cfg.train.lr, "betas": tuple(cfg.train.betas), **execution(device)}
        self.opt_s = torch.optim.Adam(self.model.student.parameters(), **adam)
        d_lr = p.d_lr if p.d_lr is not None else cfg.train.lr
        self.opt_d = (torch.optim.Adam(self.discriminators.parameters(), **{**adam, "lr": d_lr})
                      if len(self.discriminators) else None)
        # the callables used in the step: the modules, or their torch.compile'd versions
        self.teacher_fn: Callable[[torch.Tensor], list[torch.Tensor]] = self.model.teacher
        self.student_fn: Callable[[torch.Tensor], list[torch.Tensor]] = self.model.student
        self.distill_fn: Callable[..., torch.Tensor] = distillation_loss
        if cfg.train.compile and device.type == "cuda":
            # fuses BN, ReLU, SE scaling and residual adds (the memory-bound bulk of a step),
            # and L_G's normalise–multiply–sum over the four feature pairs and its backward;
            # the modules themselves (and their state_dict keys) stay as they are
            allow_recompiles()
            mode = cfg.train.compile_mode
            self.teacher_fn = torch.compile(self.model.teacher, mode=mode)
            self.student_fn = torch.compile(self.model.student, mode=mode)
            self.distill_fn = torch.compile(distillation_loss, mode=mode)

    def modules(self) -> dict[str, nn.Module]:
        return {"student": self.model.student, "discriminators": self.discriminators}

    def optimizers(self) -> dict[str, torch.optim.Optimizer | None]:
        return {"opt_s": self.opt_s, "opt_d": self.opt_d}

    def step(self, x: torch.Tensor, t_feats: list[torch.Tensor] | None = None
             ) -> dict[str, torch.Tensor]:
        """One batch of Algorithm 1. Returns detached losses (no host sync).

        ``t_feats``: T's features of ``x`` when already known (the engine's cache);
        otherwise T runs here.
        """
        lam = self.cfg.multiad.lambda_adv
        self.model.student.train()
        with self.autocast():
            if t_feats is None:
                t_feats = self.teacher_fn(x)
            s_feats = self.student_fn(x)
        out: dict[str, torch.Tensor] = {}
        l_adv = None
        if self.opt_d is not None:
            # D step (Eq. 10): S's features are detached, so S is not updated.
            self.discriminators.train()
            self.discriminators.requires_grad_(True)
            self.opt_d.zero_grad(set_to_none=True)
            l_d = x.new_zeros((), dtype=torch.float32)
            for key, disc in self.discriminators.items():
                n = int(key) - 1
                with self.autocast():
                    real = disc(l2_normalize(t_feats[n]))
                    fake = disc(l2_normalize(s_feats[n].detach()))
                l_d = l_d + discriminator_loss(real, fake)
            l_d.backward()
            self.opt_d.step()
            out["L_D"] = l_d.detach()
            # S step (Eqs. 11–12): D is frozen, its gradients are not needed.
            self.discriminators.requires_grad_(False)
            l_adv = x.new_zeros((), dtype=torch.float32)
            for key, disc in self.discriminators.items():
                with self.autocast():
                    fake = disc(l2_normalize(s_feats[int(key) - 1]))
                l_adv = l_adv + adversarial_loss(fake)
            out["L_adv"] = l_adv.detach()
        l_g = self.distill_fn(t_feats, s_feats)
        self.opt_s.zero_grad(set_to_none=True)
        if l_adv is not None and self.cfg.multiad.lambda_rule == "balanced":
            lam = self._balanced_lambda(l_g, l_adv, s_feats)
        l_s = student_loss(l_g, l_adv, lam)
        l_s.backward()  # once through S, whichever rule set λ
        self.opt_s.step()
        if l_adv is not None:  # a fill, not a host→device copy (CUDA-graph safe)
            out["lambda"] = lam if isinstance(lam, torch.Tensor) else l_adv.new_full((), lam)
        out["L_G"] = l_g.detach()
        out["L_S"] = l_s.detach()
        return out

    def _balanced_lambda(self, l_g: torch.Tensor, l_adv: torch.Tensor,
                         s_feats: list[torch.Tensor]) -> torch.Tensor:
        """λ from gradient balancing (``loss.balanced_lambda``): the two losses' gradients
        at the student features D sees (cheap for stage 4: only L_G's cosines and D lie
        above it), the graph kept for L_S's backward."""
        seen = [s_feats[int(key) - 1] for key in self.discriminators]
        g_g = torch.autograd.grad(l_g, seen, retain_graph=True)
        g_a = torch.autograd.grad(l_adv, seen, retain_graph=True)
        return balanced_lambda(g_g, g_a, self.cfg.multiad.adv_ratio)

    VALIDATION_CALIBRATION_IMAGES: ClassVar[int] = 64

    def _calibrate(self, images_u8: torch.Tensor, progress: bool
                   ) -> tuple[list[tuple[float, float]], list[list[torch.Tensor]]]:
        """Fit Ψ's BN statistics to the layer maps of normal ``images_u8`` (METHOD_SPEC §7);
        the statistics, and the maps (small: native resolution) for a second use."""
        model = self.model
        model.eval()
        bs = self.cfg.train.eval_batch_size
        moments = MapMoments(len(self.teacher.feature_info.channels))
        kept = []
        for i in tqdm(range(0, len(images_u8), bs), desc="calibrating MFF",
                      disable=not progress, leave=False):
            with self.autocast():
                maps = [m.float() for m in model.maps(self.prepare(images_u8[i:i + bs]))]
            moments.update(maps)
            kept.append(maps)
        stats = moments.result()
        if model.mff is not None:
            model.mff.calibrate(stats)
        return stats, kept

    @torch.no_grad()
    def finish(self, images_u8: torch.Tensor, progress: bool = True) -> dict[str, Any]:
        """Fit Ψ's BN statistics to the normal training maps (METHOD_SPEC §7) and record the
        training images' own scores (a reference for ``predict``)."""
        stats, kept = self._calibrate(images_u8, progress)
        size = (images_u8.shape[-2], images_u8.shape[-1])
        scores = [image_score(gaussian_blur(fuse_maps(maps, size, self.model.mff,
                                                      self.cfg.multiad.map_fusion),
                                            self.cfg.multiad.sigma)).cpu() for maps in kept]
        return {"map_stats": [{"mean": m, "var": v} for m, v in stats],
                "train_scores": score_summary(torch.cat(scores))}

    @torch.no_grad()
    def validation_model(self, images_u8: torch.Tensor) -> MultiADModel:
        """The model with Ψ calibrated as ``finish`` would now, on at most
        ``VALIDATION_CALIBRATION_IMAGES`` training images spread evenly over them."""
        n = len(images_u8)
        pick = torch.linspace(0, n - 1, min(n, self.VALIDATION_CALIBRATION_IMAGES)).long()
        self._calibrate(images_u8[pick.to(images_u8.device)], progress=False)
        return self.model

    def inference_state(self) -> dict[str, Any]:
        return {**super().inference_state(),
                "mff": self.model.mff.state_dict() if self.model.mff else None}
