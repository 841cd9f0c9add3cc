"""What every agent sees and returns: the trial records it learns from, its context, its protocol.

An agent is a proposer, not a runner: the campaign asks it for the next hypothesis (``propose``),
runs it, and tells every agent how every trial ended (``observe``), whoever proposed it. Agents
call ``validate_hypothesis`` on what they generate, so what they hand back is already known to be
inside the search space; the campaign validates again with the duplicate and compose checks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Protocol, Sequence, runtime_checkable

from autoresearch.search.hypothesis import Proposal, config_fingerprint

from autoresearch.result import (  # the one trial-status vocabulary (a leaf module: no torch)
    COMPLETED,
    CRASHED,
    DIVERGED,
    EARLY_STOPPED,
    FAILED_STATUSES,
    REFUSED,
    TIMEOUT,
)


@dataclass(frozen=True, kw_only=True)
class TrialRecord:
    """One finished trial as agents learn from it; the campaign builds these from the store.

    ``overrides`` are relative to the campaign's base config. ``val_bpb`` is the final value for a
    completed trial, the last measured one for an early-stopped trial (then ``progress`` < 1), and
    None when the trial crashed, timed out, diverged or was refused.
    """

    trial_id: int | str
    overrides: dict[str, Any]
    status: str
    val_bpb: Optional[float] = None
    progress: float = 1.0
    agent: str = "unknown"
    rationale: str = ""
    kept: bool = False
    reason: str = ""  # for a refused record: why the campaign refused it, when known (untrusted text)

    @property
    def has_value(self) -> bool:
        return self.val_bpb is not None and math.isfinite(self.val_bpb) and self.status in (COMPLETED, EARLY_STOPPED)

    @property
    def failed(self) -> bool:
        return self.status in FAILED_STATUSES or (self.status == COMPLETED and not self.has_value)

    @property
    def refused(self) -> bool:
        return self.status == REFUSED


@dataclass(kw_only=True)
class AgentContext:
    """Everything an agent may use to choose the next hypothesis.

    ``base`` is the flattened baseline config (``model.n_layer`` → 4). ``neighbours`` are lines from
    semantic memory about similar past results (possibly from other campaigns); ``literature`` are
    short notes from papers. Both may be empty.
    """

    space: Any  # autoresearch.search.SearchSpace
    base: dict[str, Any]
    history: list[TrialRecord] = field(default_factory=list)
    incumbent: Optional[TrialRecord] = None
    baseline_bpb: Optional[float] = None
    noise_std: Optional[float] = None
    remaining_trials: int = 0
    neighbours: list[str] = field(default_factory=list)
    literature: list[str] = field(default_factory=list)
    # Configurations being screened right now on other workers: no result yet, and not worth
    # proposing again (Ax knows its own pending trials; this tells every agent).
    running: list[dict[str, Any]] = field(default_factory=list)


@dataclass(kw_only=True)
class AgentCall:
    """One call to an external model: what the store keeps about its cost. Never holds a secret."""

    agent: str
    model: str
    ok: bool
    latency_s: float
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    error: Optional[str] = None


OnCall = Callable[[AgentCall], None]


class AgentUnavailable(RuntimeError):
    """The agent cannot propose any more (e.g. its provider kept failing); use an offline agent.

    ``refusals`` are what the agent met on its last attempt, so the caller can record them.
    """

    def __init__(self, reason: str, *, refusals: Sequence[Any] = ()):
        super().__init__(reason)
        self.refusals = list(refusals)


# An ``AgentCall`` whose ``error`` starts with this text is not a call but the moment an agent
# was given up for the rest of the campaign: ``fallback: <who proposes now> proposes from now on;
# <why>`` (``ok`` False, no latency or tokens). The report finds it in the store's agent_calls.
FALLBACK_EVENT = "fallback:"


def is_fallback_event(error: Optional[str]) -> bool:
    """Whether an agent_calls row's ``error`` records a switch to the fallback agent (not a call)."""
    return bool(error) and error.startswith(FALLBACK_EVENT)


@runtime_checkable
class Agent(Protocol):
    """A proposer of hypotheses.

    ``propose`` returns a ``Proposal`` whose hypothesis (if any) already passed
    ``validate_hypothesis``, plus the refusals met on the way (recorded in the store).
    ``observe`` is called once for every finished trial, whoever proposed it — completed,
    early-stopped (partial value), crashed, timed out, diverged or refused.
    """

    name: str

    def propose(self, ctx: AgentContext) -> Proposal: ...

    def observe(self, record: TrialRecord) -> None: ...


def overrides_key(overrides: dict[str, Any]) -> str:
    """The project's one fingerprint of a set of overrides, with 1 == 1.0 (numbers as floats)."""
    norm = {k: (float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v) for k, v in overrides.items()}
    return config_fingerprint(norm)


def history_seen(ctx: AgentContext) -> Callable[[str], Optional[str]]:
    """A ``seen`` callback for ``validate_hypothesis`` that knows the trials in ``ctx.history``.

    Fingerprints follow ``validate_hypothesis``'s rule (base plus the hypothesis's overrides), so
    an agent learns that it is about to repeat a finished trial before the campaign refuses it.
    """
    done: dict[str, str] = {}
    for r in ctx.history:
        if not r.refused:
            done.setdefault(config_fingerprint({**ctx.base, **r.overrides}), f"trial {r.trial_id}, {r.status}")
    return done.get
