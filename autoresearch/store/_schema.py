"""The SQLite schema of the KnowledgeStore, version ``SCHEMA_VERSION``.

The version lives in ``PRAGMA user_version`` and the file is marked as ours with
``PRAGMA application_id``, so a database written by another program, or by an autoresearch
with a different schema, is recognised on open and refused instead of being misread.
Changing any table below means bumping ``SCHEMA_VERSION``.
"""

from __future__ import annotations

SCHEMA_VERSION = 1
APPLICATION_ID = 0x41525331  # "ARS1": marks the file as an autoresearch knowledge store

# JSON columns hold scrubbed, sort_keys JSON. Timestamps are Unix seconds (REAL).
# ``embeddings.ref_id`` has no declared type on purpose: trial ids (INTEGER) and literature ids
# (TEXT) keep their own type, so they come back as the caller stored them.
TABLES = (
    """CREATE TABLE campaigns (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        config TEXT NOT NULL,
        search_space TEXT NOT NULL,
        campaign_dir TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    )""",
    """CREATE TABLE hypotheses (
        id INTEGER PRIMARY KEY,
        campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
        overrides TEXT NOT NULL,
        rationale TEXT NOT NULL,
        expected_effect TEXT NOT NULL,
        agent TEXT NOT NULL,
        parent INTEGER,
        status TEXT NOT NULL,
        fingerprint TEXT,
        refusal_code TEXT,
        refusal_reason TEXT,
        raw TEXT NOT NULL,
        created_at REAL NOT NULL
    )""",
    "CREATE INDEX hypotheses_campaign ON hypotheses(campaign_id, status)",
    """CREATE TABLE trials (
        id INTEGER PRIMARY KEY,
        campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
        hypothesis_id INTEGER REFERENCES hypotheses(id),
        kind TEXT NOT NULL,
        seed INTEGER NOT NULL,
        overrides TEXT NOT NULL,
        config TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        run_dir TEXT NOT NULL,
        status TEXT NOT NULL,
        metrics TEXT NOT NULL,
        error TEXT,
        decision TEXT,
        note TEXT NOT NULL DEFAULT '',
        started_at REAL NOT NULL,
        finished_at REAL
    )""",
    "CREATE INDEX trials_campaign ON trials(campaign_id, status)",
    "CREATE INDEX trials_fingerprint ON trials(fingerprint)",
    """CREATE TABLE curves (
        trial_id INTEGER NOT NULL REFERENCES trials(id),
        step INTEGER NOT NULL,
        point TEXT NOT NULL,
        PRIMARY KEY (trial_id, step)
    )""",
    """CREATE TABLE agent_calls (
        id INTEGER PRIMARY KEY,
        campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
        agent TEXT NOT NULL,
        model TEXT NOT NULL,
        ok INTEGER NOT NULL,
        latency_s REAL NOT NULL,
        prompt_tokens INTEGER NOT NULL,
        completion_tokens INTEGER NOT NULL,
        cost_usd REAL NOT NULL,
        error TEXT,
        created_at REAL NOT NULL
    )""",
    "CREATE INDEX agent_calls_campaign ON agent_calls(campaign_id)",
    """CREATE TABLE findings (
        id INTEGER PRIMARY KEY,
        campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
        hypothesis_id INTEGER REFERENCES hypotheses(id),
        status TEXT NOT NULL,
        effect REAL NOT NULL,
        ci_low REAL NOT NULL,
        ci_high REAL NOT NULL,
        p_value REAL NOT NULL,
        q_value REAL,
        n INTEGER NOT NULL,
        test_bpb REAL,
        details TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    )""",
    "CREATE INDEX findings_campaign ON findings(campaign_id)",
    """CREATE TABLE embeddings (
        kind TEXT NOT NULL,
        ref_id NOT NULL,
        text TEXT NOT NULL,
        model TEXT NOT NULL,
        dim INTEGER NOT NULL,
        vector BLOB NOT NULL,
        PRIMARY KEY (kind, ref_id, model)
    )""",
    """CREATE TABLE literature (
        id TEXT PRIMARY KEY,
        record TEXT NOT NULL,
        source TEXT NOT NULL,
        added_at REAL NOT NULL
    )""",
)
