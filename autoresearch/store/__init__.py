"""The KnowledgeStore: one SQLite file (WAL, versioned schema) holding everything campaigns learn.

``python -m autoresearch.store search "rope base"`` asks it questions from the shell.
"""

from autoresearch.store.knowledge_store import (
    DB_ENV,
    DEFAULT_DB,
    TSV_COLUMNS,
    KnowledgeStore,
    StoreError,
    StoreVersionError,
    TrialFinishedError,
    default_db_path,
)
from autoresearch.store.rows import (
    DECISIONS,
    FINDING_STATUSES,
    FINISHED_STATUSES,
    HYPOTHESIS_STATUSES,
    TRIAL_KINDS,
    TRIAL_STATUSES,
    AgentCallRow,
    CampaignRow,
    FindingRow,
    HypothesisRow,
    TrialRow,
    trial_label,
)
from autoresearch.store._schema import SCHEMA_VERSION
from autoresearch.store.secrets import REDACTED, scrub_secrets

__all__ = [
    "DB_ENV",
    "DECISIONS",
    "DEFAULT_DB",
    "FINDING_STATUSES",
    "FINISHED_STATUSES",
    "HYPOTHESIS_STATUSES",
    "REDACTED",
    "SCHEMA_VERSION",
    "TRIAL_KINDS",
    "TRIAL_STATUSES",
    "TSV_COLUMNS",
    "AgentCallRow",
    "CampaignRow",
    "FindingRow",
    "HypothesisRow",
    "KnowledgeStore",
    "StoreError",
    "StoreVersionError",
    "TrialFinishedError",
    "TrialRow",
    "default_db_path",
    "scrub_secrets",
    "trial_label",
]
