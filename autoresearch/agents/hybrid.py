"""Agents made of agents: a fallback pair, and the hybrid that lets Ax lead with a partner.

Published evidence on autoresearch's own task: a BO + LLM hybrid beat both alone, and an LLM
confined to a fixed space did worse than random search. So Ax proposes most trials, a partner
(the LLM when configured, else the playbook) proposes a fixed share, and both learn from every
finished trial. A slot the LLM partner cannot fill (junk, a time-out) goes to the playbook; once the
LLM is unavailable the playbook takes its place for the rest of the campaign, and the switch is
logged, kept in ``fallback_reason`` and recorded as an agent event (``FALLBACK_EVENT``).
"""

from __future__ import annotations

import logging
import math
from typing import Optional

from autoresearch.agents.base import FALLBACK_EVENT, Agent, AgentCall, AgentContext, AgentUnavailable, OnCall, TrialRecord
from autoresearch.search import Proposal

log = logging.getLogger(__name__)


class FallbackAgent:
    """``primary`` while it can propose, ``fallback`` whenever it cannot: the search never waits on it.

    A slot where ``primary`` returns no hypothesis (junk answers, a time-out) is filled by
    ``fallback`` at once, with ``primary``'s refusals kept for the record. Once ``primary`` raises
    ``AgentUnavailable`` (it counts its own failures and junk), ``fallback`` proposes for good; the
    switch is logged as a WARNING, kept in ``fallback_reason``, and reported through ``on_call`` as an
    ``AgentCall`` whose ``error`` starts with ``FALLBACK_EVENT`` (so the store keeps when it happened).
    Both observe every trial from the start, so the fallback is up to date when it takes over.
    """

    def __init__(self, primary: Agent, fallback: Agent, *, name: Optional[str] = None, on_call: Optional[OnCall] = None):
        self.primary = primary
        self.fallback = fallback
        self.name = name or primary.name
        self.fallback_reason: Optional[str] = None
        self._on_call = on_call

    @property
    def active(self) -> Agent:
        return self.fallback if self.fallback_reason is not None else self.primary

    def propose(self, ctx: AgentContext) -> Proposal:
        if self.fallback_reason is not None:
            return self.fallback.propose(ctx)
        try:
            proposal = self.primary.propose(ctx)
        except AgentUnavailable as err:
            self._switch(str(err))
            carried = list(err.refusals)
        else:
            if proposal.hypothesis is not None:
                return proposal
            carried = list(proposal.refusals)
            log.info("agent %s had no usable hypothesis for this slot; %s proposes it", self.primary.name, self.fallback.name)
        filled = self.fallback.propose(ctx)
        return Proposal(hypothesis=filled.hypothesis, refusals=[*carried, *filled.refusals])

    def observe(self, record: TrialRecord) -> None:
        if self.fallback_reason is None:
            self.primary.observe(record)
        self.fallback.observe(record)

    def _switch(self, reason: str) -> None:
        self.fallback_reason = reason
        log.warning("agent %s is unavailable (%s); agent %s proposes instead for the rest of the campaign",
                    self.primary.name, reason, self.fallback.name)
        if self._on_call is None:
            return
        event = AgentCall(agent=self.primary.name, model=str(getattr(self.primary, "model", self.primary.name)),
                          ok=False, latency_s=0.0,
                          error=f"{FALLBACK_EVENT} {self.fallback.name} proposes from now on; {reason}")
        try:
            self._on_call(event)
        except Exception:  # noqa: BLE001 - bookkeeping must not break proposing
            log.exception("recording the switch to agent %s failed", self.fallback.name)


class HybridAgent:
    """Ax (``lead``) proposes; ``partner`` proposes every slot that keeps its share at ``share``.

    The interleave is deterministic from the first slot: slot ``i`` (counting from ``start``, the
    number of trials a resumed campaign already ran) goes to the partner when
    ``floor((i+1)·share) > floor(i·share)``, so after ``n`` slots the partner has had
    ``floor(n·share)`` of them. A partner slot where the partner has nothing to offer is filled by
    the lead. Ax's own first slots are its quasi-random (Sobol) points, on purpose: they vary every
    key at once, where a partner's ideas vary one at a time, and a model fitted only on the
    partner's points has never seen most keys move (docs/MEASUREMENTS.md, "Search quality").
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
