"""The gate: ask the agent for a hypothesis, check it, and record every refusal with its reason.

Every proposal passes the same checks — schema, allowlist, dependencies, constraints (all inside
``validate_hypothesis``), repeats in any campaign (fingerprint, then semantic memory), Hydra
compose, and known results from the literature. A hypothesis that passes is stored as
``proposed``; one that does not is stored as ``refused`` or ``flagged`` and told to its agent, so
the agent (Ax included) abandons the point. Nothing an agent returns escapes as an exception.

Runs on the campaign's single proposal thread: the agent's state never changes under a running
``propose()``, and the main thread never waits on Ax or an LLM between two trials.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Optional

from autoresearch.campaign.compose import TrialComposer
from autoresearch.campaign.knowledge import Knowledge
from autoresearch.campaign.runner import describe
from autoresearch.campaign.state import CampaignState
from autoresearch.config import ConfigError
from autoresearch.result import REFUSED
from autoresearch.search import Hypothesis, Proposal, Refusal, SearchSpace, validate_hypothesis

log = logging.getLogger(__name__)
MAX_CONSECUTIVE_REFUSALS = 10  # a search that only produces refusals ends instead of spinning


class Gate:
    """Proposes and gates hypotheses for one campaign; counts refusals in a row."""

    def __init__(self, *, store, state: CampaignState, composer: TrialComposer, knowledge: Knowledge,
                 space: SearchSpace, agent: Callable[[], Any], agent_kind: str, view, seed: int,
                 remaining: Callable[[], int], retest_known_results: bool,
                 running: Callable[[], list[dict[str, Any]]] = list):
        self.store = store
        self.state = state
        self.composer = composer
        self.knowledge = knowledge
        self.space = space
        self.agent = agent  # called when needed: the agent is built in the background
        self.agent_kind = agent_kind
        self.view = view
        self.seed = seed  # the screening seed: a hypothesis is composed as it will first run
        self.remaining = remaining
        self.retest_known_results = retest_known_results
        self.running = running  # overrides of the screening runs in flight (several workers)
        self.consecutive_refusals = 0

    @property
    def exhausted(self) -> bool:
        return self.consecutive_refusals >= MAX_CONSECUTIVE_REFUSALS

    def next_hypothesis(self, out_of_time: Callable[[], bool]) -> Optional[tuple[int, Hypothesis]]:
        """Propose and gate until a hypothesis passes; None once the campaign should stop searching."""
        while not out_of_time():
            gated = self.admit(self.propose())
            if gated is not None:
                return gated
            if self.exhausted:
                return None
        return None

    def propose(self) -> Proposal:
        from autoresearch.agents import AgentContext

        ctx = AgentContext(
            space=self.space, base=self.composer.base_flat, history=self.state.history(),
            incumbent=self.state.incumbent_record(), baseline_bpb=(self.state.baseline_values() or [None])[0],
            noise_std=self.state.noise(), remaining_trials=self.remaining(),
            neighbours=self.knowledge.neighbour_lines(self.state.incumbent().overrides),
            literature=self.knowledge.literature_lines(self.space), running=self.running(),
        )
        try:
            return self.agent().propose(ctx)
        except ConfigError:  # a configuration error in the agent is an error, not a refusal
            raise
        except Exception as err:  # an agent bug must not end an overnight campaign
            log.exception("agent %s failed to propose: %s", self.agent_kind, err)
            return Proposal(hypothesis=None, refusals=[Refusal(reason=f"agent error: {type(err).__name__}: {err}",
                                                               agent=self.agent_kind, code="agent_error")])

    def admit(self, proposal: Proposal) -> Optional[tuple[int, Hypothesis]]:
        """Record the proposal's refusals; gate its hypothesis; store it as ``proposed`` if it passes."""
        for refusal in proposal.refusals:
            self.record_refusal(refusal)
        if proposal.hypothesis is None:
            self.consecutive_refusals += 1
            return None
        hyp = proposal.hypothesis
        checked = validate_hypothesis(hyp.to_dict(), space=self.space, base=self.composer.base_flat, agent=hyp.agent,
                                      seen=self.state.seen, compose=self._compose_check)
        if isinstance(checked, Refusal):
            return self._refuse(hyp, checked)
        fingerprint = self.composer.fingerprint(checked.overrides)
        duplicate = self.knowledge.duplicate_of(checked, fingerprint)
        if duplicate:
            return self._refuse(hyp, Refusal(reason=f"repeats {duplicate}", agent=hyp.agent, code="duplicate"))
        match = self.knowledge.literature_match(checked, self.composer.base_flat)
        if match is not None and match.status == "known_negative" and not self.retest_known_results:
            return self._refuse(hyp, Refusal(reason=match.reason(), agent=hyp.agent, code="known_negative"),
                                status="flagged")
        self.consecutive_refusals = 0
        note = {"literature": match.citation, "literature_status": match.status} if match is not None else {}
        hyp_id = self.store.add_hypothesis(self.state.campaign_id, {**checked.to_dict(), **note}, status="proposed",
                                           fingerprint=fingerprint)
        log.info("hypothesis h%d (%s): %s — %s", hyp_id, checked.agent, describe(checked.overrides),
                 checked.rationale[:120])
        return hyp_id, checked

    def record_refusal(self, refusal: Refusal, raw: Any = None, status: str = "refused") -> None:
        raw = raw if raw is not None else refusal.raw
        payload = raw if isinstance(raw, dict) and "overrides" in raw else {"overrides": {}, "raw": str(raw)[:2000],
                                                                           "agent": refusal.agent}
        self.store.add_hypothesis(self.state.campaign_id, payload, status=status, refusal_code=refusal.code,
                                  refusal_reason=refusal.reason)
        self.view.refused(refusal.reason)
        log.info("refused (%s, %s): %s", refusal.agent, refusal.code, refusal.reason)

    def record_agent_call(self, call) -> None:
        self.store.add_agent_call(self.state.campaign_id, agent=call.agent, model=call.model, ok=call.ok,
                                  latency_s=call.latency_s, prompt_tokens=call.prompt_tokens,
                                  completion_tokens=call.completion_tokens, cost_usd=call.cost_usd, error=call.error)

    def _refuse(self, hyp: Hypothesis, refusal: Refusal, status: str = "refused") -> None:
        """Record why ``hyp`` will not run, and tell its agent, so Ax abandons the point it suggested."""
        from autoresearch.agents import TrialRecord

        self.record_refusal(refusal, raw=hyp.to_dict(), status=status)
        self.agent().observe(TrialRecord(trial_id=-1, overrides=dict(hyp.overrides), status=REFUSED, val_bpb=None,
                                         progress=0.0, agent=hyp.agent, rationale=hyp.rationale, kept=False))
        self.consecutive_refusals += 1
        return None

    def _compose_check(self, override_strings: list[str]) -> Any:
        return self.composer.compose(override_strings, seed=self.seed)
