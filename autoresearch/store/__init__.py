"""The KnowledgeStore: one SQLite file (WAL, versioned schema) holding everything campaigns learn.

Its command line (search, literature) is ``python -m autoresearch.knowledge``, the room
that reads the store with embeddings and literature.
"""

from autoresearch.store.knowledge_store import (
    DB_ENV,
    DEFAULT_DB,
    KnowledgeStore,
    SecretInConfigError,
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

__all__ = [
    "DB_ENV",
    "DECISIONS",
    "DEFAULT_DB",
    "FINDING_STATUSES",
    "FINISHED_STATUSES",
    "HYPOTHESIS_STATUSES",
    "SCHEMA_VERSION",
    "TRIAL_KINDS",
    "TRIAL_STATUSES",
    "AgentCallRow",
    "CampaignRow",
    "FindingRow",
    "HypothesisRow",
    "KnowledgeStore",
    "SecretInConfigError",
    "StoreError",
    "StoreVersionError",
    "TrialFinishedError",
    "TrialRow",
    "default_db_path",
    "trial_label",
]
