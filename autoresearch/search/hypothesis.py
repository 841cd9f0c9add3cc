"""A hypothesis is data: a set of config overrides plus why someone expects them to help.

Agents produce these (possibly from untrusted text); nothing in here is ever executed.
Validation against the JSON Schema and the search space lives in ``autoresearch.search.validate``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

from autoresearch.search.canonical import config_fingerprint

__all__ = ["Hypothesis", "Proposal", "Refusal", "Scalar", "config_fingerprint"]

Scalar = int | float | str | bool


@dataclass(frozen=True, kw_only=True)
class Hypothesis:
    """``overrides`` maps dotted config keys (``model.rope_base``) to JSON scalars."""

    overrides: dict[str, Scalar]
    rationale: str = ""
    expected_effect: str = ""
    agent: str = "unknown"
    parent: Optional[int] = None  # id of the hypothesis (or trial) this one refines

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def override_strings(self) -> list[str]:
        """Hydra override strings (``key=value``) for already-validated overrides."""
        return [f"{k}={_hydra_value(v)}" for k, v in sorted(self.overrides.items())]


def _hydra_value(v: Scalar) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(v)  # quoted: Hydra parses it as a plain string, never as grammar


@dataclass(frozen=True, kw_only=True)
class Refusal:
    """Why a proposed hypothesis will not run. Recorded in the store, shown to the user and the agent."""

    reason: str
    raw: Any = None  # what the agent sent, kept as data
    agent: str = "unknown"
    # schema | forbidden | unknown_key | type | range | inactive | constraint | duplicate | compose
    # | known_negative | invalid (see autoresearch.search.validate for what each means)
    code: str = "invalid"


@dataclass(kw_only=True)
class Proposal:
    """What an agent hands the campaign for one slot: a hypothesis, or the refusal of what it sent."""

    hypothesis: Optional[Hypothesis] = None
    refusals: list[Refusal] = field(default_factory=list)
