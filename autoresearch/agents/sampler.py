"""The random agent: a uniform valid point of the search space. The baseline every agent must beat.

Published evidence on autoresearch's own task found an LLM confined to a fixed space doing worse
than random search, so random search is kept as a first-class agent to compare against.
"""

from __future__ import annotations

import random

from autoresearch.agents.base import AgentContext, TrialRecord, history_seen
from autoresearch.search import Hypothesis, Proposal, Refusal, validate_hypothesis

_TRIES = 50


def sample_valid(space, base: dict, rng: random.Random, *, agent: str, seen, rationale: str,
                 expected_effect: str, tries: int = _TRIES) -> Hypothesis | Refusal:
    """A random point of ``space`` that passes the gate and was not run before, or the last refusal."""
    result: Hypothesis | Refusal = Refusal(reason="no valid point was sampled", agent=agent, code="invalid")
    for _ in range(tries):
        result = validate_hypothesis(
            {"overrides": space.sample(rng, base), "rationale": rationale, "expected_effect": expected_effect},
            space=space, base=base, agent=agent, seen=seen,
        )
        if isinstance(result, Hypothesis):
            return result
    return result


class RandomAgent:
    """``space.sample`` until a point passes ``validate_hypothesis`` and was not run before."""

    def __init__(self, *, seed: int = 0, name: str = "random"):
        self.name = name
        self._rng = random.Random(seed)

    def observe(self, record: TrialRecord) -> None:
        """Random search learns nothing."""

    def propose(self, ctx: AgentContext) -> Proposal:
        result = sample_valid(
            ctx.space, ctx.base, self._rng, agent=self.name, seen=history_seen(ctx),
            rationale="A uniformly random point of the search space (random-search baseline).",
            expected_effect="unknown: random search is the reference other agents must beat",
        )
        if isinstance(result, Hypothesis):
            return Proposal(hypothesis=result)
        return Proposal(hypothesis=None, refusals=[result])
