"""``make_agent``: the agent a campaign's ``agent`` config asks for, caught up with its history."""

from __future__ import annotations

import logging
import os
from typing import Any, Iterable, Optional

from autoresearch.agents.base import Agent, OnCall, TrialRecord
from autoresearch.config import ConfigError, ConfigProblem
from autoresearch.config.schema import AGENT_KINDS, AgentConfig

log = logging.getLogger(__name__)


def make_agent(
    cfg: AgentConfig,
    space: Any,
    base: dict[str, Any],
    *,
    seed: int = 0,
    on_call: Optional[OnCall] = None,
    history: Iterable[TrialRecord] = (),
) -> Agent:
    """Build the agent ``cfg.kind`` names over ``space`` (a ``SearchSpace``) and ``base`` (flattened).

    ``history`` (finished trials, oldest first) is replayed through ``observe`` so that a resumed
    campaign's agent knows what the store knows — for bayes, an Ax experiment with one trial per
    record. ``on_call`` receives an ``AgentCall`` for every call to an external model.

    ``llm`` is wrapped so that the playbook fills every slot the model cannot (junk, a time-out) and,
    once the model is unavailable, carries on alone (a WARNING, ``.fallback_reason``, and an
    ``AgentCall`` event through ``on_call`` whose error starts with ``FALLBACK_EVENT``); ``hybrid``
    does the same for its llm partner.
    """
    _check(cfg)
    history = list(history)
    agent = _build(cfg, space, base, seed=seed, on_call=on_call, history=history)
    log.info("agent %s ready (%d past trials replayed)", _describe(agent), len(history))
    return agent


def check_agent_config(cfg: AgentConfig) -> None:
    """Raise one ``ConfigError`` for everything wrong with ``cfg`` that shows without building the
    agent (no Ax import, no network): the campaign calls it at start-up, before any trial runs."""
    _check(cfg)
    if cfg.kind in ("playbook", "llm") or (cfg.kind == "hybrid" and partner_kind(cfg) == "playbook"):
        from autoresearch.agents.playbook import Playbook

        Playbook.load(cfg.playbook.path)  # the llm falls back to it, so it must load too


def _build(cfg: AgentConfig, space: Any, base: dict[str, Any], *, seed: int, on_call: Optional[OnCall],
           history: list[TrialRecord]) -> Agent:
    from autoresearch.agents.hybrid import FallbackAgent, HybridAgent

    if cfg.kind in ("bayes", "hybrid"):
        from autoresearch.agents.bayes import BayesAgent

        lead = BayesAgent(cfg.bayes, space, base, history=history)  # replays history into Ax
        if cfg.kind == "bayes":
            return lead
    if cfg.kind == "random":
        from autoresearch.agents.sampler import RandomAgent

        return _replay(RandomAgent(seed=seed), history)
    if cfg.kind == "playbook" or (cfg.kind == "hybrid" and partner_kind(cfg) == "playbook"):
        other: Agent = _playbook(cfg, seed)
    else:
        other = FallbackAgent(_llm(cfg, on_call), _playbook(cfg, seed), name="llm", on_call=on_call)
    _replay(other, history)
    if cfg.kind != "hybrid":
        return other
    # A resumed campaign continues the interleave where it stopped.
    return HybridAgent(lead, other, cfg.partner_share, start=sum(1 for r in history if not r.refused))


def _replay(agent: Agent, history: list[TrialRecord]) -> Agent:
    for record in history:
        agent.observe(record)
    return agent


def partner_kind(cfg: AgentConfig) -> str:
    """The hybrid's partner: llm when asked for, or (auto) when its API key is in the environment."""
    if cfg.partner_kind == "llm" or (cfg.partner_kind == "auto" and os.environ.get(cfg.llm.api_key_env)):
        return "llm"
    return "playbook"


def _playbook(cfg: AgentConfig, seed: int) -> Agent:
    from autoresearch.agents.playbook import PlaybookAgent

    return PlaybookAgent.from_config(cfg.playbook, seed=seed)


def _llm(cfg: AgentConfig, on_call: Optional[OnCall]) -> Agent:
    from autoresearch.agents.llm import LLMAgent

    return LLMAgent(cfg.llm, on_call=on_call)


def _describe(agent: Agent) -> str:
    parts = [agent.name]
    for attr in ("lead", "partner", "primary"):
        inner = getattr(agent, attr, None)
        if inner is not None:
            parts.append(f"{attr}={inner.name}")
    return " ".join(parts)


def _check(cfg: AgentConfig) -> None:
    """Values the schema does not check yet but an agent cannot work with; all reported at once."""
    p = list(cfg.problems())
    if cfg.kind not in AGENT_KINDS:
        return _raise(p)
    if cfg.bayes.sobol_trials < 0:
        p.append(ConfigProblem("agent.bayes.sobol_trials", f"must be >= 0, got {cfg.bayes.sobol_trials}"))
    llm = cfg.llm
    if llm.max_tokens <= 0:
        p.append(ConfigProblem("agent.llm.max_tokens", f"must be > 0, got {llm.max_tokens}"))
    if llm.backoff_s < 0:
        p.append(ConfigProblem("agent.llm.backoff_s", f"must be >= 0, got {llm.backoff_s}"))
    if llm.max_consecutive_failures < 1:
        p.append(ConfigProblem("agent.llm.max_consecutive_failures", f"must be >= 1, got {llm.max_consecutive_failures}"))
    if not 0.0 <= llm.temperature <= 2.0:
        p.append(ConfigProblem("agent.llm.temperature", f"must be in [0, 2], got {llm.temperature}"))
    if not llm.model:
        p.append(ConfigProblem("agent.llm.model", "names no model (a litellm model string, e.g. openai/gpt-4o-mini)"))
    if llm.api_key_env and (llm.api_key_env.startswith("sk-") or not llm.api_key_env.replace("_", "").isalnum()):
        p.append(ConfigProblem("agent.llm.api_key_env", "must be the NAME of an environment variable (e.g. OPENAI_API_KEY), never the key itself"))
    _raise(p)


def _raise(problems: list[ConfigProblem]) -> None:
    if problems:
        raise ConfigError(problems)
