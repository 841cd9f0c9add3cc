"""The bayes agent: a real Ax Client over shipped search spaces.

Sobol suggestions take milliseconds, BoTorch ones seconds, so most tests stay in the Sobol phase
(a large ``sobol_trials``); one test crosses into BoTorch.
"""

from __future__ import annotations

import math

import pytest

from autoresearch.agents import AgentContext, TrialRecord, make_agent
from autoresearch.agents.bayes import BayesAgent
from autoresearch.config import compose, flatten, to_dict, to_experiment_config
from autoresearch.config.schema import AgentConfig, BayesAgentConfig
from autoresearch.search import Hypothesis, SearchSpace, validate_hypothesis


@pytest.fixture(scope="module")
def base() -> dict:
    return flatten(to_dict(to_experiment_config(compose([]))))


def objective(base: dict, overrides: dict) -> float:
    """A smooth stand-in for val_bpb: best near lr 5e-3 with rope."""
    full = {**base, **overrides}
    penalty = 0.0 if full["model.pos_encoding"] == "rope" else 0.05
    return 2.0 + 0.1 * (math.log10(full["optim.lr"]) + 2.3) ** 2 + penalty


def ctx(space, base, history, baseline_bpb=None) -> AgentContext:
    return AgentContext(space=space, base=base, history=list(history), baseline_bpb=baseline_bpb,
                        noise_std=0.01, remaining_trials=5)


def foreign(base, i, overrides, status="completed", agent="playbook"):
    v = objective(base, overrides) if status in ("completed", "early_stopped") else None
    return TrialRecord(trial_id=i, overrides=overrides, status=status, val_bpb=v, agent=agent,
                       progress=0.4 if status == "early_stopped" else 1.0)


def ax_status_counts(agent: BayesAgent) -> dict[str, int]:
    """What Ax itself says (Client.summarize), not the agent's own bookkeeping."""
    df = agent.client.summarize()
    return df["trial_status"].value_counts().to_dict() if len(df) else {}


@pytest.mark.parametrize("space_name", ["rope_ablation", "quickstart"])
def test_bayes_proposes_valid_hypotheses(space_name, base):
    space = SearchSpace.load(space_name)
    agent = make_agent(AgentConfig(kind="bayes", bayes=BayesAgentConfig(sobol_trials=20, seed=1)), space, base)
    history: list[TrialRecord] = []
    for i in range(4):
        proposal = agent.propose(ctx(space, base, history))
        h = proposal.hypothesis
        assert isinstance(h, Hypothesis) and h.agent == "bayes"
        assert "Sobol" in h.rationale
        assert isinstance(validate_hypothesis(h.to_dict(), space=space, base=base, agent="x"), Hypothesis)
        record = TrialRecord(trial_id=i, overrides=h.overrides, status="completed",
                             val_bpb=objective(base, h.overrides), agent="bayes")
        history.append(record)
        agent.observe(record)
    assert ax_status_counts(agent) == {"COMPLETED": 4}


def test_bayes_learns_from_foreign_trials_and_replays_history(base):
    space = SearchSpace.load("rope_ablation")
    history = [
        foreign(base, 1, {"optim.lr": 0.001}),
        foreign(base, 2, {"model.pos_encoding": "alibi"}, agent="llm"),
        foreign(base, 3, {"model.rope_base": 100000.0}, status="early_stopped"),
        foreign(base, 4, {"optim.lr": 0.02}, status="diverged"),
        foreign(base, 5, {"optim.lr": 0.0007}, status="crashed"),
    ]
    agent = make_agent(AgentConfig(kind="bayes", bayes=BayesAgentConfig(sobol_trials=20)), space, base, history=history)
    # one Ax trial per store record, in the status the record implies
    assert ax_status_counts(agent) == {"COMPLETED": 2, "EARLY_STOPPED": 1, "FAILED": 2}
    df = agent.client.summarize()
    assert sorted(df["val_bpb"].dropna().round(6)) == sorted(
        round(r.val_bpb, 6) for r in history if r.val_bpb is not None)
    # observing the same trial again (campaign + replay) does not duplicate it
    agent.observe(history[0])
    assert len(agent.client.summarize()) == len(history)
    # the baseline, once known, is attached too; the agent's own suggestion completes in place
    proposal = agent.propose(ctx(space, base, history, baseline_bpb=objective(base, {})))
    assert proposal.hypothesis is not None
    assert len(agent.client.summarize()) == len(history) + 2  # + baseline + the new suggestion
    mine = TrialRecord(trial_id=9, overrides=proposal.hypothesis.overrides, status="completed",
                       val_bpb=2.1, agent="bayes")
    agent.observe(mine)
    assert len(agent.client.summarize()) == len(history) + 2
    assert ax_status_counts(agent)["COMPLETED"] == 4


def test_bayes_abandons_a_suggestion_the_campaign_refused(base):
    space = SearchSpace.load("quickstart")
    agent = make_agent(AgentConfig(kind="bayes", bayes=BayesAgentConfig(sobol_trials=20)), space, base)
    h = agent.propose(ctx(space, base, [])).hypothesis
    agent.observe(TrialRecord(trial_id=-1, overrides=h.overrides, status="refused", agent="bayes"))
    assert ax_status_counts(agent) == {"ABANDONED": 1}


def test_bayes_retries_refused_suggestions_then_falls_back(tmp_path, base):
    """Ax does not know the space's constraints: refused suggestions are abandoned and retried."""
    path = tmp_path / "narrow.yaml"
    path.write_text(
        "name: narrow\n"
        "parameters:\n"
        "  optim.lr: {type: range, value_type: float, bounds: [0.0005, 0.02], log_scale: true}\n"
        "  optim.warmup_fraction: {type: range, value_type: float, bounds: [0.0, 0.2]}\n"
        "constraints:\n"
        "  - 'optim.lr < 0.0006'\n"
    )
    space = SearchSpace.load(str(path))
    agent = make_agent(AgentConfig(kind="bayes", bayes=BayesAgentConfig(sobol_trials=20)), space, base)
    proposal = agent.propose(ctx(space, base, []))
    assert proposal.hypothesis is not None and proposal.hypothesis.overrides["optim.lr"] < 0.0006
    codes = [r.code for r in proposal.refusals]
    assert codes and set(codes) == {"constraint"} and len(codes) <= 3
    statuses = ax_status_counts(agent)
    assert statuses.get("ABANDONED") == len(codes)
    if "random valid point" in proposal.hypothesis.rationale:  # the fallback is attached so Ax learns from it
        assert sum(statuses.values()) == len(codes) + 1


@pytest.mark.slow
def test_bayes_switches_to_botorch_after_sobol(base):
    space = SearchSpace.load("rope_ablation")
    history = [foreign(base, i, o) for i, o in enumerate(
        [{"optim.lr": 0.001}, {"optim.lr": 0.01}, {"model.pos_encoding": "alibi"}, {"optim.lr": 0.004}])]
    agent = make_agent(AgentConfig(kind="bayes", bayes=BayesAgentConfig(sobol_trials=3)), space, base, history=history)
    proposal = agent.propose(ctx(space, base, history, baseline_bpb=objective(base, {})))
    h = proposal.hypothesis
    assert h is not None and "BoTorch" in h.rationale
    assert "predicts val_bpb" in h.expected_effect
    assert isinstance(validate_hypothesis(h.to_dict(), space=space, base=base, agent="x"), Hypothesis)
