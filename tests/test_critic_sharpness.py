"""Sharpness: Hutchinson trace is right on a known Hessian; the monitor fires on planted overfitting only."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from autoresearch.config import ModelConfig, SharpnessConfig
from autoresearch.train import Intervention, SharpnessMonitor, hutchinson_trace, hvp_forward


def test_trace_of_a_quadratic_with_diagonal_hessian_is_exact():
    # loss = 0.5 Σ a_i x_i² has Hessian diag(a): every Rademacher probe gives vᵀHv = Σ a_i exactly.
    a = torch.tensor([1.0, 2.0, 3.0, 4.0])
    x = torch.nn.Parameter(torch.randn(4))
    w = torch.nn.Parameter(torch.randn(3))  # a second tensor: traces add up over parameters
    loss = 0.5 * (a * x**2).sum() + (w**2).sum()
    gen = torch.Generator().manual_seed(0)
    assert hutchinson_trace(loss, [x, w], probes=3, generator=gen) == pytest.approx(10.0 + 6.0)


def test_trace_of_a_dense_hessian_is_unbiased():
    torch.manual_seed(0)
    m = torch.randn(6, 6)
    h = m @ m.T  # symmetric, trace known
    x = torch.nn.Parameter(torch.randn(6))
    gen = torch.Generator().manual_seed(1)
    estimates = []
    for _ in range(200):
        loss = 0.5 * x @ h @ x
        estimates.append(hutchinson_trace(loss, [x], probes=4, generator=gen))
    assert sum(estimates) / len(estimates) == pytest.approx(float(h.trace()), rel=0.1)


def test_trace_runs_through_the_projects_gpt_inside_hvp_forward():
    from autoresearch.model import GPT

    torch.manual_seed(0)
    model = GPT(ModelConfig(n_layer=1, n_head=2, n_embd=16, block_size=8, vocab_size=16))
    x = torch.randint(0, 16, (2, 8))
    with hvp_forward():
        _, loss = model(x, x)
    trace = hutchinson_trace(loss, list(model.parameters()), 2, torch.Generator().manual_seed(0))
    assert math.isfinite(trace)


def test_unused_parameters_and_bad_arguments():
    x = torch.nn.Parameter(torch.ones(2))
    unused = torch.nn.Parameter(torch.ones(3))
    gen = torch.Generator().manual_seed(0)
    assert hutchinson_trace((x**2).sum(), [x, unused], 1, gen) == pytest.approx(4.0)
    assert hutchinson_trace((3 * x).sum(), [x], 1, gen) == 0.0  # linear: no curvature
    with pytest.raises(ValueError, match="probes"):
        hutchinson_trace((x**2).sum(), [x], 0, gen)
    with pytest.raises(ValueError, match="scalar"):
        hutchinson_trace(x**2, [x], 1, gen)


def test_monitor_threshold_rise_cap_and_disabled_triggers():
    cfg = SharpnessConfig(enabled=True, threshold=100.0, max_rise=1.0, max_interventions=2,
                          weight_decay_step=0.05, dropout_step=0.1)
    mon = SharpnessMonitor(cfg)
    assert mon.update(0, 10.0) is None
    assert mon.update(100, 15.0) is None  # +50 %: below max_rise
    rise = mon.update(200, 35.0)  # +133 %
    assert isinstance(rise, Intervention) and "rose" in rise.reason and rise.step == 200
    assert (rise.weight_decay_delta, rise.dropout_delta) == (0.05, 0.1)
    assert mon.update(300, float("nan")) is None  # skipped, not remembered
    high = mon.update(400, 150.0)
    assert high is not None and "threshold" in high.reason
    assert mon.update(500, 1000.0) is None  # max_interventions reached
    assert len(mon.interventions) == 2 and mon.history[-1] == (500, 1000.0)
    assert rise.to_dict()["trace"] == 35.0
    off = SharpnessMonitor(SharpnessConfig(threshold=0.0, max_rise=0.0))
    assert all(off.update(s, t) is None for s, t in enumerate([1.0, 100.0, 1e6]))


# --------------------------------------------------------------------------- planted overfitting
VOCAB, CONTEXT = 32, 4


def _mlp(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Embedding(VOCAB, 32), torch.nn.Flatten(),
        torch.nn.Linear(32 * CONTEXT, 256), torch.nn.GELU(),
        torch.nn.Linear(256, 256), torch.nn.GELU(),
        torch.nn.Linear(256, VOCAB),
    )


def _windows(tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return tokens[:-1].unfold(0, CONTEXT, 1), tokens[CONTEXT:]  # (N, CONTEXT) inputs, next-token targets


@pytest.fixture
def one_thread():
    """These small models only contend with other work when given more threads (shared CI cores)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _train(*, tokens: int, lr: float, steps: int, seed: int, monitor: SharpnessMonitor, every: int = 5) -> list[float]:
    """A ~110k-parameter MLP language model; the monitor sees a trace estimate every few steps."""
    gen = torch.Generator().manual_seed(seed)
    x, y = _windows(torch.randint(0, VOCAB, (tokens,), generator=gen))
    tiny = len(x) <= 512
    probe = torch.arange(len(x)) if tiny else torch.randint(0, len(x), (256,), generator=gen)
    model = _mlp(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    traces = []
    for step in range(steps + 1):
        if step % every == 0:
            loss = F.cross_entropy(model(x[probe]), y[probe])
            trace = hutchinson_trace(loss, list(model.parameters()), 4, gen)
            traces.append(trace)
            monitor.update(step, trace)
        idx = torch.arange(len(x)) if tiny else torch.randint(0, len(x), (256,), generator=gen)
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return traces


SHARP = SharpnessConfig(enabled=True, threshold=100.0, max_rise=0.0, max_interventions=3)


@pytest.mark.parametrize("seed", [0, 1])
def test_planted_overfitting_raises_the_trace_and_triggers(seed, one_thread):
    """A few hundred random tokens, memorised by a comparatively big MLP at a high learning rate."""
    monitor = SharpnessMonitor(SHARP)
    traces = _train(tokens=300, lr=3e-3, steps=25, seed=seed, monitor=monitor)
    assert max(traces) > 10 * abs(traces[0])  # the trace climbs steeply while it memorises
    assert monitor.interventions and "threshold" in monitor.interventions[0].reason
    rise = SharpnessMonitor(SharpnessConfig(enabled=True, max_rise=2.0))
    for step, trace in enumerate(traces):
        rise.update(step, trace)
    assert rise.interventions and "rose" in rise.interventions[0].reason


@pytest.mark.parametrize("seed", [0, 1])
def test_healthy_run_does_not_trigger(seed, one_thread):
    """Plenty of fresh random data and a small learning rate: nothing to memorise, no sharpening."""
    monitor = SharpnessMonitor(SHARP)
    traces = _train(tokens=100_000, lr=3e-4, steps=40, seed=seed, monitor=monitor)
    assert not monitor.interventions, traces
    assert max(traces) < SHARP.threshold / 3
