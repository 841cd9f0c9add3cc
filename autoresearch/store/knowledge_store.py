"""The KnowledgeStore: every campaign, hypothesis, trial, curve, agent call and finding, in SQLite."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import reprlib
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import numpy as np

from autoresearch.store._schema import APPLICATION_ID, SCHEMA_VERSION, TABLES
from autoresearch.store.rows import (
    DECISIONS,
    FINDING_STATUSES,
    FINISHED_STATUSES,
    HYPOTHESIS_STATUSES,
    RUNNING,
    TRIAL_KINDS,
    TRIAL_STATUSES,
    AgentCallRow,
    CampaignRow,
    FindingRow,
    HypothesisRow,
    TrialRow,
    trial_label,
)
from autoresearch.safety import find_secret, scrub, scrub_text, secret_values

log = logging.getLogger(__name__)

DEFAULT_DB = Path("outputs") / "knowledge.sqlite"
DB_ENV = "AUTORESEARCH_DB"
_FINDING_FIELDS = ("status", "effect", "ci_low", "ci_high", "p_value", "q_value", "n", "test_bpb", "details")


def default_db_path() -> Path:
    """``$AUTORESEARCH_DB`` if set, else ``outputs/knowledge.sqlite``: one store shared by all
    campaigns, so that a duplicate is recognised whichever campaign ran the original."""
    return Path(os.environ.get(DB_ENV) or DEFAULT_DB)


class StoreError(Exception):
    """The store cannot do what was asked; the message says why and what to do."""


class StoreVersionError(StoreError):
    """The database file was written with another schema (or by another program)."""


class SecretInConfigError(StoreError):
    """A config to be stored holds a secret; the message names the key (never the value)."""


class TrialFinishedError(StoreError):
    """A finished trial was asked to change its result: finished results are immutable."""


class KnowledgeStore:
    """Everything autoresearch learns, in one SQLite file shared by all campaigns.

    **What it holds.** Campaigns (resolved config, search space, directory); hypotheses, all of
    them, including refused and flagged ones with their reason; trials (baseline, hypothesis,
    validation, ablation) with resolved config, overrides, seed, config fingerprint, run
    directory, status and metrics; per-step curves; agent calls (tokens, cost, latency);
    the critic's findings; embeddings for semantic memory; user-added literature.

    **Durability.** The file is in WAL mode and every write method runs in one
    ``BEGIN IMMEDIATE`` transaction: a ``kill -9`` at any moment leaves each row either whole or
    absent, never half-written. Readers in other processes (``python -m autoresearch.store
    search``) see the last committed state while a campaign writes.

    **Threads and processes.** One instance may be shared by the threads of one process: a lock
    serialises access to its connection. Several processes may open the same file (two campaigns
    sharing one store); SQLite's file lock serialises their writes, waiting up to
    ``timeout_s``. A ``running`` trial is owned by the campaign that created it; only that
    campaign should finish it.

    **Finished trials are immutable.** ``finish_trial`` moves a trial out of ``running`` exactly
    once; finishing it again raises ``TrialFinishedError``. The measurement (status, metrics,
    error) never changes afterwards; only the campaign's judgement of it (``decision``, ``note``)
    may be set later. Curves are append-only and idempotent by step.

    **Resume.** Trials still ``running`` when a campaign starts died with its previous process
    (``running_trials``); the campaign decides whether to re-run them.

    **Secrets never reach the file.** Every text and JSON value is scrubbed before it is
    written, by the project's one scrubber (``autoresearch.safety``): keys in the common formats,
    bearer tokens, URL credentials and the values of secret-named environment variables become
    ``***``.

    **Versioned schema.** ``PRAGMA user_version`` holds the schema version and
    ``PRAGMA application_id`` marks the file as ours. A file of another version, or a foreign
    SQLite database, is refused with a message naming it and saying what to do; it is never
    modified.

    Returned rows are frozen snapshots with JSON columns decoded; ids are SQLite integer keys.
    """

    def __init__(self, path: Path | str, *, timeout_s: float = 30.0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so each write method is exactly one
        # transaction. check_same_thread=False + the lock: any thread may use the one connection.
        self._conn = sqlite3.connect(str(self.path), timeout=timeout_s, isolation_level=None, check_same_thread=False)
        self._conn.row_factory = sqlite3.Row  # rows map to the frozen dataclasses by column name
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
            self._open_schema()
            mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                log.warning("knowledge store %s: journal mode is %s, not WAL (filesystem without shared memory?)", self.path, mode)
            self._conn.execute("PRAGMA synchronous = NORMAL")  # with WAL: safe against process kills
            self._conn.execute("PRAGMA foreign_keys = ON")
        except BaseException:
            self._conn.close()
            raise

    # ------------------------------------------------------------------ lifecycle
    def _open_schema(self) -> None:
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            with self._write() as conn:
                # Re-read inside the write lock: another process may have created it meanwhile.
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                n_tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
                if version == 0 and n_tables:
                    raise StoreVersionError(
                        f"{self.path} is an SQLite database but not an autoresearch knowledge store "
                        f"(it has {n_tables} tables and no schema version). Point --db or ${DB_ENV} at "
                        f"another file; this one is left untouched."
                    )
                if version == 0:
                    for statement in TABLES:
                        conn.execute(statement)
                    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                    log.info("knowledge store %s created (schema version %d)", self.path, SCHEMA_VERSION)
                    return
        app_id = self._conn.execute("PRAGMA application_id").fetchone()[0]
        if app_id != APPLICATION_ID:
            raise StoreVersionError(
                f"{self.path} is not an autoresearch knowledge store (application_id {app_id:#x}). "
                f"Point --db or ${DB_ENV} at another file; this one is left untouched."
            )
        if version > SCHEMA_VERSION:
            raise StoreVersionError(
                f"{self.path} has schema version {version}, newer than the version {SCHEMA_VERSION} this "
                f"autoresearch reads: it was written by a newer autoresearch. Upgrade autoresearch "
                f"(pip install -U autoresearch), or point --db or ${DB_ENV} at another file."
            )
        if version < SCHEMA_VERSION:
            raise StoreVersionError(
                f"{self.path} has schema version {version}, older than the version {SCHEMA_VERSION} this "
                f"autoresearch reads, and there is no migration from it. Keep it with the autoresearch "
                f"version that wrote it, or move it aside (mv {self.path} {self.path}.v{version}) to start "
                f"a new store."
            )

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "KnowledgeStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"KnowledgeStore({str(self.path)!r})"

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction. IMMEDIATE takes the write lock up front, so a read-check-write
        (``finish_trial``) cannot interleave with another writer."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, tuple(params)).fetchall()

    # ------------------------------------------------------------------ campaigns
    def upsert_campaign(self, name: str, config: dict, search_space: str, campaign_dir: str) -> int:
        """Create the campaign, or update its config/search space/directory and keep its id (resume).

        A config holding a secret (a key pasted where the *name* of its variable belongs) is refused
        with ``SecretInConfigError`` before anything is written."""
        where = find_secret(config)
        if where is not None:
            raise SecretInConfigError(
                f"the config of campaign {name!r} holds what looks like a secret at {where or 'its top level'}: "
                "put the key in an environment variable and give the variable's NAME (e.g. "
                "agent.llm.api_key_env=OPENAI_API_KEY); nothing was stored"
            )
        secrets = secret_values()
        now = time.time()
        with self._write() as conn:
            conn.execute(
                "INSERT INTO campaigns (name, config, search_space, campaign_dir, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET config = excluded.config, "
                "search_space = excluded.search_space, campaign_dir = excluded.campaign_dir, "
                "updated_at = excluded.updated_at",
                (name, _json(config, secrets), _text(search_space, secrets), _text(str(campaign_dir), secrets), now, now),
            )
            return conn.execute("SELECT id FROM campaigns WHERE name = ?", (name,)).fetchone()[0]

    def campaign(self, name: str) -> Optional[CampaignRow]:
        rows = self._read(f"SELECT {_CAMPAIGN_COLS} FROM campaigns WHERE name = ?", (name,))
        return _campaign_row(rows[0]) if rows else None

    def campaigns(self) -> list[CampaignRow]:
        return [_campaign_row(r) for r in self._read(f"SELECT {_CAMPAIGN_COLS} FROM campaigns ORDER BY id")]

    def campaign_by_id(self, campaign_id: int) -> CampaignRow:
        rows = self._read(f"SELECT {_CAMPAIGN_COLS} FROM campaigns WHERE id = ?", (campaign_id,))
        if not rows:
            raise KeyError(f"no campaign {campaign_id} in {self.path}")
        return _campaign_row(rows[0])

    def rename_campaign(self, old: str, new: str) -> None:
        """Retire a campaign's name (``campaign.fresh``): its rows stay, under ``new``, for memory and duplicates."""
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM campaigns WHERE name = ?", (new,)).fetchone():
                raise StoreError(f"a campaign named {new!r} already exists in {self.path}")
            if conn.execute("UPDATE campaigns SET name = ? WHERE name = ?", (new, old)).rowcount == 0:
                raise KeyError(f"no campaign named {old!r} in {self.path}")

    # ------------------------------------------------------------------ hypotheses
    def add_hypothesis(
        self,
        campaign_id: int,
        hypothesis: dict,
        *,
        status: str,
        fingerprint: Optional[str] = None,
        refusal_code: Optional[str] = None,
        refusal_reason: Optional[str] = None,
    ) -> int:
        """Record a proposal (``Hypothesis.to_dict()``, or whatever an agent sent when it was refused).

        The dict is data from an agent: its fields are coerced to text, never interpreted.
        """
        _check_choice("hypothesis status", status, HYPOTHESIS_STATUSES)
        secrets = secret_values()
        raw = hypothesis if isinstance(hypothesis, dict) else {"raw": hypothesis}
        overrides = raw.get("overrides")
        parent = raw.get("parent")
        with self._write() as conn:
            cur = conn.execute(
                "INSERT INTO hypotheses (campaign_id, overrides, rationale, expected_effect, agent, parent, status, "
                "fingerprint, refusal_code, refusal_reason, raw, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    campaign_id,
                    _json(overrides if isinstance(overrides, dict) else {}, secrets),
                    _text(_str_or_empty(raw.get("rationale")), secrets),
                    _text(_str_or_empty(raw.get("expected_effect")), secrets),
                    _text(_str_or_empty(raw.get("agent")) or "unknown", secrets),
                    _sqlite_int(parent),
                    status,
                    fingerprint,
                    refusal_code,
                    _text(refusal_reason, secrets),
                    _json(raw, secrets),
                    time.time(),
                ),
            )
            return int(cur.lastrowid)

    def hypothesis(self, hypothesis_id: int) -> HypothesisRow:
        rows = self._read(f"SELECT {_HYPOTHESIS_COLS} FROM hypotheses WHERE id = ?", (hypothesis_id,))
        if not rows:
            raise KeyError(f"no hypothesis {hypothesis_id} in {self.path}")
        return _hypothesis_row(rows[0])

    def hypotheses(self, campaign_id: int, status: Optional[str] = None) -> list[HypothesisRow]:
        sql, params = f"SELECT {_HYPOTHESIS_COLS} FROM hypotheses WHERE campaign_id = ?", [campaign_id]
        if status is not None:
            _check_choice("hypothesis status", status, HYPOTHESIS_STATUSES)
            sql, params = sql + " AND status = ?", params + [status]
        return [_hypothesis_row(r) for r in self._read(sql + " ORDER BY id", params)]

    # ------------------------------------------------------------------ trials
    def add_trial(
        self,
        campaign_id: int,
        hypothesis_id: Optional[int],
        *,
        kind: str,
        seed: int,
        overrides: dict,
        config: dict,
        fingerprint: str,
        run_dir: str,
    ) -> int:
        """Start a trial: status ``running``, ``started_at`` now. Returns its id."""
        _check_choice("trial kind", kind, TRIAL_KINDS)
        secrets = secret_values()
        with self._write() as conn:
            try:
                cur = conn.execute(
                    "INSERT INTO trials (campaign_id, hypothesis_id, kind, seed, overrides, config, fingerprint, run_dir, "
                    "status, metrics, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, '{}', ?)",
                    (
                        campaign_id,
                        hypothesis_id,
                        kind,
                        int(seed),
                        _json(overrides, secrets),
                        _json(config, secrets),
                        fingerprint,
                        _text(str(run_dir), secrets),
                        RUNNING,
                        time.time(),
                    ),
                )
            except sqlite3.IntegrityError as err:
                raise KeyError(
                    f"cannot add a trial to campaign {campaign_id} / hypothesis {hypothesis_id} in {self.path}: {err} "
                    "(create the campaign with upsert_campaign and the hypothesis with add_hypothesis first)"
                ) from err
            return int(cur.lastrowid)

    def finish_trial(self, trial_id: int, status: str, metrics: dict, error: Optional[str] = None) -> None:
        """Record how a running trial ended (``metrics`` = ``RunResult.to_dict()``). Exactly once."""
        _check_choice("finished trial status", status, FINISHED_STATUSES)
        secrets = secret_values()
        with self._write() as conn:
            row = conn.execute("SELECT status FROM trials WHERE id = ?", (trial_id,)).fetchone()
            if row is None:
                raise KeyError(f"no trial {trial_id} in {self.path}")
            if row[0] != RUNNING:
                raise TrialFinishedError(
                    f"trial {trial_label(trial_id)} already finished as {row[0]!r}; finished trials are immutable "
                    "(start a new trial to measure again)"
                )
            conn.execute(
                "UPDATE trials SET status = ?, metrics = ?, error = ?, finished_at = ? WHERE id = ?",
                (status, _json(metrics, secrets), _text(error, secrets), time.time(), trial_id),
            )

    def set_trial_run_dir(self, trial_id: int, run_dir: str) -> None:
        """Where a trial's files live; named after its id, so known only once the row exists."""
        with self._write() as conn:
            if conn.execute("UPDATE trials SET run_dir = ? WHERE id = ?", (_text(str(run_dir), secret_values()), trial_id)).rowcount == 0:
                raise KeyError(f"no trial {trial_id} in {self.path}")

    def set_trial_decision(self, trial_id: int, decision: str, note: str = "") -> None:
        """The campaign's judgement of a finished trial: ``keep`` (new incumbent) or ``discard``."""
        _check_choice("decision", decision, DECISIONS)
        with self._write() as conn:
            row = conn.execute("SELECT status FROM trials WHERE id = ?", (trial_id,)).fetchone()
            if row is None:
                raise KeyError(f"no trial {trial_id} in {self.path}")
            if row[0] == RUNNING:
                raise StoreError(f"trial {trial_label(trial_id)} is still running: finish it before deciding on it")
            conn.execute("UPDATE trials SET decision = ?, note = ? WHERE id = ?", (decision, _text(note, secret_values()), trial_id))

    def trial(self, trial_id: int) -> TrialRow:
        rows = self._read(f"SELECT {_TRIAL_COLS} FROM trials WHERE id = ?", (trial_id,))
        if not rows:
            raise KeyError(f"no trial {trial_id} in {self.path}")
        return _trial_row(rows[0])

    def trials(
        self, campaign_id: Optional[int] = None, *, status: Optional[str] = None, kind: Optional[str] = None
    ) -> list[TrialRow]:
        where, params = [], []
        if campaign_id is not None:
            where, params = where + ["campaign_id = ?"], params + [campaign_id]
        if status is not None:
            _check_choice("trial status", status, TRIAL_STATUSES)
            where, params = where + ["status = ?"], params + [status]
        if kind is not None:
            _check_choice("trial kind", kind, TRIAL_KINDS)
            where, params = where + ["kind = ?"], params + [kind]
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        return [_trial_row(r) for r in self._read(f"SELECT {_TRIAL_COLS} FROM trials{clause} ORDER BY id", params)]

    def running_trials(self, campaign_id: int) -> list[TrialRow]:
        """Trials of this campaign never finished: on start-up these died with the previous process."""
        return self.trials(campaign_id, status=RUNNING)

    def find_by_fingerprint(self, fp: str) -> list[TrialRow]:
        """Every trial, in any campaign, whose resolved config had this fingerprint (oldest first)."""
        return [_trial_row(r) for r in self._read(f"SELECT {_TRIAL_COLS} FROM trials WHERE fingerprint = ? ORDER BY id", (fp,))]

    # ------------------------------------------------------------------ curves
    def add_curve_points(self, trial_id: int, points: list[dict]) -> None:
        """Append curve points (``curve.jsonl`` rows). A step already stored is left as it was, so
        re-reading a growing ``curve.jsonl`` from the start is safe."""
        secrets = secret_values()
        rows = []
        for point in points:
            step = point.get("step") if isinstance(point, dict) else None
            if not isinstance(step, int) or isinstance(step, bool):
                raise ValueError(f"curve point for trial {trial_label(trial_id)} has no integer 'step': {point!r}")
            rows.append((trial_id, step, _json(point, secrets)))
        if not rows:
            return
        with self._write() as conn:
            try:
                conn.executemany("INSERT OR IGNORE INTO curves (trial_id, step, point) VALUES (?, ?, ?)", rows)
            except sqlite3.IntegrityError as err:
                raise KeyError(f"no trial {trial_id} in {self.path}: {err}") from err

    def curve(self, trial_id: int) -> list[dict]:
        return [_loads(r[0]) for r in self._read("SELECT point FROM curves WHERE trial_id = ? ORDER BY step", (trial_id,))]

    # ------------------------------------------------------------------ agent calls
    def add_agent_call(
        self,
        campaign_id: int,
        *,
        agent: str,
        model: str,
        ok: bool,
        latency_s: float,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        cost_usd: float = 0.0,
        error: Optional[str] = None,
    ) -> int:
        secrets = secret_values()
        with self._write() as conn:
            cur = conn.execute(
                "INSERT INTO agent_calls (campaign_id, agent, model, ok, latency_s, prompt_tokens, completion_tokens, "
                "cost_usd, error, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    campaign_id,
                    _text(agent, secrets),
                    _text(model, secrets),
                    int(bool(ok)),
                    float(latency_s),
                    int(prompt_tokens),
                    int(completion_tokens),
                    float(cost_usd),
                    _text(error, secrets),
                    time.time(),
                ),
            )
            return int(cur.lastrowid)

    def agent_calls(self, campaign_id: int) -> list[AgentCallRow]:
        rows = self._read(f"SELECT {_AGENT_CALL_COLS} FROM agent_calls WHERE campaign_id = ? ORDER BY id", (campaign_id,))
        return [_agent_call_row(r) for r in rows]

    # ------------------------------------------------------------------ findings
    def add_finding(
        self,
        campaign_id: int,
        hypothesis_id: Optional[int],
        *,
        status: str,
        effect: float,
        ci_low: float,
        ci_high: float,
        p_value: float,
        q_value: Optional[float],
        n: int,
        test_bpb: Optional[float] = None,
        details: Optional[dict] = None,
    ) -> int:
        _check_choice("finding status", status, FINDING_STATUSES)
        now = time.time()
        with self._write() as conn:
            cur = conn.execute(
                "INSERT INTO findings (campaign_id, hypothesis_id, status, effect, ci_low, ci_high, p_value, q_value, n, "
                "test_bpb, details, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    campaign_id,
                    hypothesis_id,
                    status,
                    float(effect),
                    float(ci_low),
                    float(ci_high),
                    float(p_value),
                    _opt_float(q_value),
                    int(n),
                    _opt_float(test_bpb),
                    _json(details or {}, secret_values()),
                    now,
                    now,
                ),
            )
            return int(cur.lastrowid)

    def finding(self, finding_id: int) -> FindingRow:
        rows = self._read(f"SELECT {_FINDING_COLS} FROM findings WHERE id = ?", (finding_id,))
        if not rows:
            raise KeyError(f"no finding {finding_id} in {self.path}")
        return _finding_row(rows[0])

    def findings(self, campaign_id: int) -> list[FindingRow]:
        rows = self._read(f"SELECT {_FINDING_COLS} FROM findings WHERE campaign_id = ? ORDER BY id", (campaign_id,))
        return [_finding_row(r) for r in rows]

    def update_finding(self, finding_id: int, **fields: Any) -> None:
        """Revise a finding (e.g. ``q_value`` once Benjamini–Hochberg has seen every hypothesis,
        ``test_bpb`` after the final test evaluation)."""
        unknown = sorted(set(fields) - set(_FINDING_FIELDS))
        if unknown:
            raise ValueError(f"update_finding: unknown field(s) {unknown}; allowed: {list(_FINDING_FIELDS)}")
        if not fields:
            return
        if "status" in fields:
            _check_choice("finding status", fields["status"], FINDING_STATUSES)
        values: list[Any] = []
        for key in fields:
            value = fields[key]
            if key == "details":
                value = _json(value or {}, secret_values())
            elif key == "n":
                value = int(value)
            elif key in ("q_value", "test_bpb"):
                value = _opt_float(value)
            elif key != "status":
                value = float(value)
            values.append(value)
        assignments = ", ".join(f"{key} = ?" for key in fields)
        with self._write() as conn:
            cur = conn.execute(
                f"UPDATE findings SET {assignments}, updated_at = ? WHERE id = ?", (*values, time.time(), finding_id)
            )
            if cur.rowcount == 0:
                raise KeyError(f"no finding {finding_id} in {self.path}")

    # ------------------------------------------------------------------ embeddings
    def put_embedding(self, kind: str, ref_id: int | str, text: str, vector: np.ndarray, model: str) -> None:
        """Store (or replace) the vector of one text; ``model`` names the embedder that made it,
        so vectors from different embedders are never compared."""
        vec = np.asarray(vector, dtype=np.float32).reshape(-1)
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO embeddings (kind, ref_id, text, model, dim, vector) VALUES (?, ?, ?, ?, ?, ?)",
                (kind, ref_id, _text(text, secret_values()), model, int(vec.shape[0]), vec.tobytes()),
            )

    def embeddings(self, kind: str, model: str) -> tuple[list[int | str], list[str], np.ndarray]:
        """``(ids, texts, matrix)`` of one kind made by one model; ``matrix`` is (n, dim) float32."""
        rows = self._read(
            "SELECT ref_id, text, dim, vector FROM embeddings WHERE kind = ? AND model = ? ORDER BY rowid", (kind, model)
        )
        if not rows:
            return [], [], np.zeros((0, 0), dtype=np.float32)
        dims = {r[2] for r in rows}
        if len(dims) != 1:
            raise StoreError(f"{self.path}: embeddings of kind {kind!r} by {model!r} have mixed dimensions {sorted(dims)}")
        matrix = np.stack([np.frombuffer(r[3], dtype=np.float32) for r in rows])
        return [r[0] for r in rows], [r[1] for r in rows], matrix

    # ------------------------------------------------------------------ literature
    def put_literature(self, records: list[dict], source: str) -> int:
        """Add or replace literature records by ``id`` (validated by ``knowledge.Literature``)."""
        secrets = secret_values()
        now = time.time()
        with self._write() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO literature (id, record, source, added_at) VALUES (?, ?, ?, ?)",
                [(str(r["id"]), _json(r, secrets), _text(source, secrets), now) for r in records],
            )
        return len(records)

    def literature(self) -> list[dict]:
        return [_loads(r[0]) for r in self._read("SELECT record FROM literature ORDER BY added_at, id")]


# ---------------------------------------------------------------------- helpers
def _check_choice(what: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{what} must be one of {list(allowed)}, got {value!r}")


def _str_or_empty(value: Any) -> str:
    return "" if value is None else str(value)


def _opt_float(value: Any) -> Optional[float]:
    return None if value is None else float(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


_INT64 = range(-(2**63), 2**63)
_REPR = reprlib.Repr()
_REPR.maxstring, _REPR.maxother, _REPR.maxlevel = 2000, 200, 8


def _sqlite_int(value: Any) -> Optional[int]:
    """An integer SQLite can hold, else None (an agent's ``parent`` may be any JSON number)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value in _INT64 else None


def _json(value: Any, secrets: list[str]) -> str:
    # Round-trip through JSON first so that non-JSON values (Paths, numpy) are rendered to text
    # before scrubbing sees them. ensure_ascii keeps lone surrogates as escapes SQLite can store.
    try:
        plain = json.loads(json.dumps(value, default=_json_default))
        return json.dumps(scrub(plain, secrets), sort_keys=True)
    except (RecursionError, ValueError, TypeError) as err:
        # Nested deeper than JSON (or Python) can follow: keep a clipped picture of it, never fail the write.
        return json.dumps({"unstorable": f"{type(err).__name__}", "text": _text(_REPR.repr(value), secrets)})


def _text(value: Optional[str], secrets: list[str]) -> Optional[str]:
    """Scrubbed text SQLite can store: a lone surrogate (no UTF-8 form) becomes its escape."""
    if value is None:
        return None
    return scrub_text(str(value), secrets).encode("utf-8", "backslashreplace").decode("utf-8")


def _loads(text: Optional[str]) -> Any:
    return {} if text is None else json.loads(text)


# Columns holding JSON, decoded on read; every other column maps to its field as stored.
_JSON_COLUMNS = frozenset({"config", "overrides", "raw", "metrics", "details"})


def _columns(row_type: type) -> str:
    """The SELECT list of a row dataclass: its fields are the table's column names."""
    return ", ".join(f.name for f in dataclasses.fields(row_type))


def _decoded(r: sqlite3.Row) -> dict[str, Any]:
    return {key: _loads(r[key]) if key in _JSON_COLUMNS else r[key] for key in r.keys()}


_CAMPAIGN_COLS = _columns(CampaignRow)
_HYPOTHESIS_COLS = _columns(HypothesisRow)
_TRIAL_COLS = _columns(TrialRow)
_AGENT_CALL_COLS = _columns(AgentCallRow)
_FINDING_COLS = _columns(FindingRow)


def _campaign_row(r: sqlite3.Row) -> CampaignRow:
    return CampaignRow(**_decoded(r))


def _hypothesis_row(r: sqlite3.Row) -> HypothesisRow:
    return HypothesisRow(**_decoded(r))


def _trial_row(r: sqlite3.Row) -> TrialRow:
    return TrialRow(**_decoded(r))


def _agent_call_row(r: sqlite3.Row) -> AgentCallRow:
    return AgentCallRow(**{**_decoded(r), "ok": bool(r["ok"])})


def _finding_row(r: sqlite3.Row) -> FindingRow:
    return FindingRow(**_decoded(r))
