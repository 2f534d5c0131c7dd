"""How the optimisers run, not what they compute (shared by every trained method)."""

from __future__ import annotations

import torch

FUSED_DEVICES = ("cuda", "cpu")  # where torch has fused Adam / SGD kernels


def execution(device: torch.device) -> dict[str, bool]:
    """One fused kernel updates all parameters in a single pass over memory; the
    multi-tensor path makes about eight (for Multi-AD's S and D, 86 M parameters, a
    memory-bound cost comparable to a whole training step at small batches; ``make bench``'s
    ``adam_*_ms`` components measure both)."""
    fused = device.type in FUSED_DEVICES
    return {"fused": fused, "foreach": not fused}


def set_execution(opt: torch.optim.Optimizer, device: torch.device, *,
                  capturable: bool) -> None:
    """Apply :func:`execution` (and, for Adam, ``capturable`` for CUDA-graph capture) to
    ``opt``, with each parameter's ``step`` counter where that mode keeps it. Needed after
    ``load_state_dict``, which restores the settings of the run that saved the checkpoint
    (an older run, or one from another device)."""
    options = dict(execution(device))
    if "capturable" in opt.defaults:
        options["capturable"] = capturable
    for group in opt.param_groups:
        group.update(options)
    where = device if options["fused"] or capturable else torch.device("cpu")
    for param, state in opt.state.items():
        step = state.get("step")
        if torch.is_tensor(step):
            state["step"] = step.to(where, torch.float32)
        for key, value in state.items():  # moments in the parameter's own layout: a CPU
            # checkpoint's are contiguous, a channels-last CUDA network's are not, and the
            # fused kernels refuse mixed layouts
            if key != "step" and torch.is_tensor(value) and value.shape == param.shape \
                    and value.stride() != param.stride():
                state[key] = torch.empty_like(param).copy_(value)


def allow_recompiles(limit: int = 64) -> None:
    """One notebook compiles many networks (MVTec categories, ablation variants, the partial
    last batch): past dynamo's default of 8 compilations per function it would fall back to
    eager (with one logged warning), so the limit is raised."""
    import torch._dynamo.config as dynamo

    name = "recompile_limit" if hasattr(dynamo, "recompile_limit") else "cache_size_limit"
    setattr(dynamo, name, max(getattr(dynamo, name), limit))
