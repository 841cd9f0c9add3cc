"""What the KnowledgeStore hands back: frozen rows with their JSON columns already decoded.

Rows are snapshots. They are frozen so that a caller cannot "edit" a trial by mutating the
object it was given and believe the change was stored: every change goes through a store
method, inside a transaction. (The dicts inside are plain dicts; treat them as read-only.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from autoresearch.result import FINISHED_STATUSES, RUNNING  # the one trial-status vocabulary

# Vocabularies the store enforces on write; a typo here would otherwise become a silent new state.
HYPOTHESIS_STATUSES = ("proposed", "refused", "flagged")
TRIAL_KINDS = ("baseline", "hypothesis", "validation", "ablation", "scale")  # scale: a discovery re-tested at a larger model
TRIAL_STATUSES = (RUNNING, *FINISHED_STATUSES)
DECISIONS = ("keep", "candidate", "discard")  # candidate: beat the noise floor once, awaiting multi-seed validation
FINDING_STATUSES = ("validated", "rejected", "inconclusive")


@dataclass(frozen=True, kw_only=True)
class CampaignRow:
    id: int
    name: str
    config: dict[str, Any]
    search_space: str
    campaign_dir: str
    created_at: float
    updated_at: float


@dataclass(frozen=True, kw_only=True)
class HypothesisRow:
    """A proposal as the agent made it. Refused and flagged ones are kept forever, with the reason."""

    id: int
    campaign_id: int
    overrides: dict[str, Any]
    rationale: str
    expected_effect: str
    agent: str
    parent: Optional[int]
    status: str
    fingerprint: Optional[str]
    refusal_code: Optional[str]
    refusal_reason: Optional[str]
    raw: dict[str, Any]  # the whole hypothesis dict as received (scrubbed), for provenance
    created_at: float

    def to_hypothesis_dict(self) -> dict[str, Any]:
        """The ``Hypothesis.to_dict()`` shape this row was made from."""
        return {
            "overrides": dict(self.overrides),
            "rationale": self.rationale,
            "expected_effect": self.expected_effect,
            "agent": self.agent,
            "parent": self.parent,
        }


@dataclass(frozen=True, kw_only=True)
class TrialRow:
    """One training run. ``status`` is ``running`` until ``finish_trial``; after that the row is final
    except for ``decision``/``note``, which record the campaign's judgement, not the measurement."""

    id: int
    campaign_id: int
    hypothesis_id: Optional[int]
    kind: str
    seed: int
    overrides: dict[str, Any]
    config: dict[str, Any]
    fingerprint: str
    run_dir: str
    status: str
    metrics: dict[str, Any]
    error: Optional[str]
    decision: Optional[str]
    note: str
    started_at: float
    finished_at: Optional[float]

    @property
    def label(self) -> str:
        """The short id shown to people and written as ``commit`` in results.tsv (``t0012``)."""
        return trial_label(self.id)

    @property
    def val_bpb(self) -> Optional[float]:
        value = self.metrics.get("val_bpb")
        if value is None:
            return None
        try:
            value = float(value)
        except (TypeError, ValueError):
            return None
        return None if value != value else value  # NaN (a crash) reads as "no value"

    @property
    def finished(self) -> bool:
        return self.status != RUNNING


@dataclass(frozen=True, kw_only=True)
class AgentCallRow:
    id: int
    campaign_id: int
    agent: str
    model: str
    ok: bool
    latency_s: float
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    error: Optional[str]
    created_at: float


@dataclass(frozen=True, kw_only=True)
class FindingRow:
    """The critic's verdict on one hypothesis: a paired effect with its interval and test."""

    id: int
    campaign_id: int
    hypothesis_id: Optional[int]
    status: str
    effect: float
    ci_low: float
    ci_high: float
    p_value: float
    q_value: Optional[float]
    n: int
    test_bpb: Optional[float]
    details: dict[str, Any]
    created_at: float
    updated_at: float


def trial_label(trial_id: int) -> str:
    return f"t{trial_id:04d}"
