"""Agents made of agents: a fallback pair, and the hybrid that lets Ax lead with a partner.

Published evidence on autoresearch's own task: a BO + LLM hybrid beat both alone, and an LLM
confined to a fixed space did worse than random search. So Ax proposes most trials, a partner
(the LLM when configured, else the playbook) proposes a fixed share, and both learn from every
finished trial. When the LLM partner becomes unavailable the playbook takes its place for the rest
of the campaign, and the switch is logged and kept in ``fallback_reason``.
"""

from __future__ import annotations

import logging
import math
from typing import Optional

from autoresearch.agents.base import Agent, AgentContext, AgentUnavailable, TrialRecord
from autoresearch.search import Proposal

log = logging.getLogger(__name__)


class FallbackAgent:
    """``primary`` until it raises ``AgentUnavailable``, then ``fallback`` for good.

    Both observe every trial from the start, so the fallback is up to date when it takes over.
    """

    def __init__(self, primary: Agent, fallback: Agent, *, name: Optional[str] = None):
        self.primary = primary
        self.fallback = fallback
        self.name = name or primary.name
        self.fallback_reason: Optional[str] = None

    @property
    def active(self) -> Agent:
        return self.fallback if self.fallback_reason is not None else self.primary

    def propose(self, ctx: AgentContext) -> Proposal:
        if self.fallback_reason is None:
            try:
                return self.primary.propose(ctx)
            except AgentUnavailable as err:
                self.fallback_reason = str(err)
                log.warning("agent %s is unavailable (%s); agent %s proposes instead for the rest of the campaign",
                            self.primary.name, err, self.fallback.name)
        return self.fallback.propose(ctx)

    def observe(self, record: TrialRecord) -> None:
        if self.fallback_reason is None:
            self.primary.observe(record)
        self.fallback.observe(record)


class HybridAgent:
    """Ax (``lead``) proposes; ``partner`` proposes every slot that keeps its share at ``share``.

    The interleave is deterministic: slot ``i`` (counting from ``start``, the number of trials a
    resumed campaign already ran) goes to the partner when ``floor((i+1)·share) > floor(i·share)``,
    so after ``n`` slots the partner has had ``floor(n·share)`` of them. A partner slot where the
    partner has nothing to offer is filled by the lead.
    """

    name = "hybrid"

    def __init__(self, lead: Agent, partner: Agent, share: float, *, start: int = 0):
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"agent.partner_share must be in [0, 1], got {share}")
        self.lead = lead
        self.partner = partner
        self.share = share
        self.slot = start

    @property
    def fallback_reason(self) -> Optional[str]:
        return getattr(self.partner, "fallback_reason", None)

    def partner_turn(self, slot: int) -> bool:
        eps = 1e-9  # 0.3 × 10 must count as 3
        return math.floor((slot + 1) * self.share + eps) > math.floor(slot * self.share + eps)

    def propose(self, ctx: AgentContext) -> Proposal:
        slot, self.slot = self.slot, self.slot + 1
        if not self.partner_turn(slot):
            return self.lead.propose(ctx)
        proposal = self.partner.propose(ctx)
        if proposal.hypothesis is not None:
            return proposal
        log.info("partner %s had no hypothesis for slot %d; %s proposes", self.partner.name, slot, self.lead.name)
        filled = self.lead.propose(ctx)
        return Proposal(hypothesis=filled.hypothesis, refusals=[*proposal.refusals, *filled.refusals])

    def observe(self, record: TrialRecord) -> None:
        self.lead.observe(record)
        self.partner.observe(record)
