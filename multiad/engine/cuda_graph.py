"""A trained method's step captured as one CUDA graph (the same kernels, without launch
overhead).

At the paper's batch of 16 a WRN-50-2 training step is thousands of small kernel launches;
the GPU idles between them. ``GraphedStep`` records the whole step — for Multi-AD: teacher
forward (or, with T's features computed once, their copy into the graph's inputs), student
forward, D step, S step, both Adam updates — once, then replays it. The
optimisation is unchanged: warm-up steps are undone before capture, Adam runs with
``capturable=True`` (the same update rule, its step counter kept on the GPU).
Several models (e.g. MVTec categories or ablation settings) train concurrently by replaying
their graphs on separate CUDA streams, which fills the device at small batches; each graph
then draws its dropout from its own RNG state (``multiad.engine.cuda_rng``).
"""

from __future__ import annotations

import torch

from multiad.engine.cuda_rng import using_cuda_rng
from multiad.engine.optim import set_execution
from multiad.engine.trainer import TrainerBase


def _optimizers(trainer: TrainerBase) -> list[torch.optim.Optimizer]:
    return [opt for opt in trainer.optimizers().values() if opt is not None]


def _snapshot(trainer: TrainerBase) -> dict:
    opt_state = {}
    for opt in _optimizers(trainer):
        for group in opt.param_groups:
            for p in group["params"]:
                opt_state[p] = {k: v.clone() if torch.is_tensor(v) else v
                                for k, v in opt.state.get(p, {}).items()}
    return {"modules": {name: {k: v.clone() for k, v in m.state_dict().items()}
                        for name, m in trainer.modules().items()},
            "opt": opt_state, "rng": torch.cuda.get_rng_state(trainer.device)}


def _restore(trainer: TrainerBase, snap: dict) -> None:
    """Put weights, BN statistics, optimiser moments and RNG back *in place* (addresses
    kept)."""
    with torch.no_grad():
        for name, m in trainer.modules().items():
            for k, v in m.state_dict().items():
                v.copy_(snap["modules"][name][k])
        for opt in _optimizers(trainer):
            for p, state in opt.state.items():
                before = snap["opt"].get(p, {})
                for k, v in state.items():
                    if torch.is_tensor(v):
                        # a fresh Adam state is all zeros (step 0), the same as none at all
                        v.copy_(before[k]) if k in before else v.zero_()
    torch.cuda.set_rng_state(snap["rng"], trainer.device)


def static_buffer(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device,
                  fmt: torch.memory_format) -> torch.Tensor:
    """A zero-filled input buffer of a captured graph, in the step's layout."""
    return torch.zeros(shape, dtype=dtype, device=device).contiguous(memory_format=fmt)


class GraphedStep:
    """``trainer.step`` for one fixed batch shape, replayed from a CUDA graph."""

    def __init__(self, trainer: TrainerBase, batch_shape: tuple[int, int, int, int],
                 warmup: int = 3, stream: torch.cuda.Stream | None = None,
                 teacher: list[tuple[tuple[int, ...], torch.dtype]] | None = None,
                 rng: torch.Generator | None = None) -> None:
        """``teacher``: (shape, dtype) of each of T's feature maps when the step is given
        them (``multiad.engine.teacher_cache.teacher_features``); otherwise T runs inside the graph.
        ``rng``: the CUDA RNG state the graph draws from and advances
        (:func:`multiad.engine.cuda_rng.own_cuda_rng`; concurrent graphs need one each), or
        ``None`` for the default state."""
        if trainer.device.type != "cuda":
            raise RuntimeError("CUDA graphs need a CUDA device")
        self.trainer = trainer
        trainer.graph_safe = True
        for opt in _optimizers(trainer):  # step counters on the GPU (also when resumed)
            set_execution(opt, trainer.device, capturable=True)
        self.stream = stream or torch.cuda.Stream(trainer.device)
        fmt = trainer.memory_format()
        self.static_x = static_buffer(batch_shape, torch.float32, trainer.device, fmt)
        self.static_t = None if teacher is None else [
            static_buffer(shape, dtype, trainer.device, fmt) for shape, dtype in teacher]
        with using_cuda_rng(rng, trainer.device):  # the graph is bound to the state of capture
            snap = _snapshot(trainer)
            self.stream.wait_stream(torch.cuda.current_stream(trainer.device))
            with torch.cuda.stream(self.stream):
                for _ in range(warmup):
                    trainer.step(self.static_x, self.static_t)
            torch.cuda.current_stream(trainer.device).wait_stream(self.stream)
            _restore(trainer, snap)
            torch.cuda.synchronize(trainer.device)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph, stream=self.stream):
                self.static_out = trainer.step(self.static_x, self.static_t)

    def __call__(self, x: torch.Tensor, t_feats: list[torch.Tensor] | None = None
                 ) -> dict[str, torch.Tensor]:
        """Queue one step on ``x`` (same shape as captured) on this step's stream, with T's
        features ``t_feats`` when the graph was captured to take them.

        Returns the losses without waiting; call ``join()`` before reading them on the
        current stream. Steps of different models are not ordered against each other.
        ``x`` and ``t_feats`` are read on this step's stream: keep them alive until the
        step is joined (or make them on that stream, as ``train_many`` does).
        """
        self.stream.wait_stream(torch.cuda.current_stream(self.trainer.device))
        if (t_feats is None) != (self.static_t is None):
            raise ValueError("this graph was captured "
                             f"{'with' if self.static_t is not None else 'without'} "
                             "T's features as input; pass them exactly then")
        with torch.cuda.stream(self.stream):
            self.static_x.copy_(x)
            for buf, t in zip(self.static_t or [], t_feats or [], strict=True):
                buf.copy_(t)
            self.graph.replay()
            return {k: v.clone() for k, v in self.static_out.items()}

    def join(self) -> None:
        """Make the current stream wait for this step's queued work."""
        torch.cuda.current_stream(self.trainer.device).wait_stream(self.stream)


def graphed_step_if_asked(trainer: TrainerBase, images: torch.Tensor, start: int,
                          stream: torch.cuda.Stream | None, t_cache: list[torch.Tensor] | None,
                          rng: torch.Generator | None) -> GraphedStep | None:
    """The run's step as a CUDA graph when ``train.cuda_graph`` asks, the method's step has
    been checked capturable, the device is CUDA and a full batch and an epoch are left;
    otherwise None (the step runs eagerly)."""
    cfg, bs = trainer.cfg, trainer.cfg.train.batch_size
    if not (cfg.train.cuda_graph and trainer.graph_capturable
            and trainer.device.type == "cuda" and len(images) >= bs
            and start < cfg.train.epochs):
        return None
    # the same step without launch overhead; warm-up steps are undone before capture
    return GraphedStep(trainer, (bs, *images.shape[1:]), stream=stream,
                       teacher=None if t_cache is None else
                       [((bs, *c.shape[1:]), c.dtype) for c in t_cache], rng=rng)
