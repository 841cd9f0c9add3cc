"""Agents propose hypotheses; the campaign runs them and tells every agent how each trial ended.

- ``bayes``: Ax (Sobol, then BoTorch) over the search space, learning from every trial.
- ``playbook``: known research ideas (``playbook.yaml``), ordered by what the store knows.
- ``llm``: any litellm model answering in JSON, validated like everything else; the playbook
  fills each slot it cannot (junk, time-outs) and takes over once it is unavailable.
- ``hybrid`` (default): Ax leads, the llm (when its key is set) or the playbook takes a share.
- ``random``: uniform valid points, the reference every agent must beat.

Build one with ``make_agent(cfg.agent, space, base, history=...)``; see ``Agent`` for the protocol.
"""

from autoresearch.agents.base import (
    Agent,
    AgentCall,
    AgentContext,
    AgentUnavailable,
    FALLBACK_EVENT,
    TrialRecord,
    is_fallback_event,
)
from autoresearch.agents.factory import check_agent_config, make_agent, partner_kind
from autoresearch.agents.hybrid import FallbackAgent, HybridAgent
from autoresearch.agents.playbook import Playbook, PlaybookAgent

__all__ = [
    "FALLBACK_EVENT",
    "Agent",
    "AgentCall",
    "AgentContext",
    "AgentUnavailable",
    "FallbackAgent",
    "HybridAgent",
    "Playbook",
    "PlaybookAgent",
    "TrialRecord",
    "check_agent_config",
    "make_agent",
    "is_fallback_event",
    "partner_kind",
]
