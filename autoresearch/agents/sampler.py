"""The random agent: a uniform valid point of the search space. The baseline every agent must beat.

Published evidence on autoresearch's own task found an LLM confined to a fixed space doing worse
than random search, so random search is kept as a first-class agent to compare against.
"""

from __future__ import annotations

import random

from autoresearch.agents.base import AgentContext, TrialRecord, history_seen
from autoresearch.search import Hypothesis, Proposal, Refusal, validate_hypothesis

_TRIES = 50


class RandomAgent:
    """``space.sample`` until a point passes ``validate_hypothesis`` and was not run before."""

    def __init__(self, *, seed: int = 0, name: str = "random"):
        self.name = name
        self._rng = random.Random(seed)

    def observe(self, record: TrialRecord) -> None:
        """Random search learns nothing."""

    def propose(self, ctx: AgentContext) -> Proposal:
        seen = history_seen(ctx)
        last: list[Refusal] = []
        for _ in range(_TRIES):
            overrides = ctx.space.sample(self._rng, ctx.base)
            result = validate_hypothesis(
                {"overrides": overrides, "rationale": "A uniformly random point of the search space (random-search baseline).",
                 "expected_effect": "unknown: random search is the reference other agents must beat"},
                space=ctx.space, base=ctx.base, agent=self.name, seen=seen,
            )
            if isinstance(result, Hypothesis):
                return Proposal(hypothesis=result)
            last = [result]
        return Proposal(hypothesis=None, refusals=last)
