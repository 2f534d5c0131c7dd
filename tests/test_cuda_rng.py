"""Per-run CUDA RNG states: concurrent graphs draw what they draw alone (run on a GPU)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from multiad.engine.cuda_rng import own_cuda_rng, using_cuda_rng

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def _capture_dropout(state: torch.Generator, x: torch.Tensor):
    """A graph of one dropout, bound to ``state``; its stream and static output."""
    dev = x.device
    stream, graph = torch.cuda.Stream(dev), torch.cuda.CUDAGraph()
    with using_cuda_rng(state, dev):
        stream.wait_stream(torch.cuda.current_stream(dev))
        with torch.cuda.stream(stream):  # warm-up off the default stream, as captures want
            F.dropout(x, 0.5)
        torch.cuda.current_stream(dev).wait_stream(stream)
        with torch.cuda.graph(graph, stream=stream):
            out = F.dropout(x, 0.5)
    return graph, stream, out


def _replay(graphs, which, rounds):
    """Replay the graphs ``which`` in turn, each on its own stream, without waiting in
    between; a copy of each replay's output."""
    dev = torch.device("cuda")
    outs = {k: [] for k in which}
    for _ in range(rounds):
        for k in which:
            graph, stream, out = graphs[k]
            stream.wait_stream(torch.cuda.current_stream(dev))
            with torch.cuda.stream(stream):
                graph.replay()
                outs[k].append(out.clone())
    for k in which:
        torch.cuda.current_stream(dev).wait_stream(graphs[k][1])
    torch.cuda.synchronize(dev)
    return outs


@needs_cuda
def test_concurrent_graphs_with_own_rng_states_draw_as_when_replayed_alone():
    dev = torch.device("cuda")
    x = torch.ones(1 << 18, device=dev)
    states = [own_cuda_rng(dev) for _ in range(3)]
    for k, state in enumerate(states):
        state.manual_seed(100 + k)
    graphs = [_capture_dropout(state, x) for state in states]
    start = [state.get_state() for state in states]
    alone = {}
    for k, state in enumerate(states):
        state.set_state(start[k])
        alone[k] = _replay(graphs, [k], 12)[k]
    for k, state in enumerate(states):
        state.set_state(start[k])
    together = _replay(graphs, [0, 1, 2], 12)
    for k in range(3):
        assert all(torch.equal(a, b) for a, b in zip(alone[k], together[k], strict=True)), k
        assert not torch.equal(alone[k][0], alone[k][1])  # a fresh mask at every replay
    assert not torch.equal(together[0][0], together[1][0])  # and each run its own


@needs_cuda
def test_an_own_state_leaves_the_default_one_alone():
    dev = torch.device("cuda")
    before = torch.cuda.get_rng_state(dev)
    state = own_cuda_rng(dev)
    with using_cuda_rng(state, dev):
        torch.rand(1000, device=dev)
        inside = torch.cuda.get_rng_state(dev)
    assert torch.equal(torch.cuda.get_rng_state(dev), before)
    assert not torch.equal(inside, before) and torch.equal(state.get_state(), inside)


def test_a_cuda_rng_state_needs_a_cuda_device():
    with pytest.raises(ValueError, match="needs a CUDA device"):
        own_cuda_rng(torch.device("cpu"))
