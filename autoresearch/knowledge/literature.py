"""Known results from the literature, and which of them a hypothesis would re-test.

A record (one JSON object per line) says what a paper claims and which config settings it bears
on::

    {"id": "liu2025-dropout", "title": "...", "year": 2025, "url": "https://...",
     "abstract": "...", "claimed_effect": "...", "effect_direction": "negative",
     "tags": ["regularisation"], "keys": ["model.dropout"],
     "settings": {"model.dropout": {"gt": 0}}}

``settings`` values are conditions on the hypothesis's overrides: a scalar (equal), a list (any
of), or a dict of comparisons (``gt``, ``ge``, ``lt``, ``le``, ``ne``; all must hold).

The package ships ``known_results.jsonl``: short summaries in this project's own words, with
citations, of results that bear on the shipped search spaces. Users add their own with
``python -m autoresearch.knowledge literature add FILE``; those live in the KnowledgeStore and replace a
shipped record of the same id.

How a hypothesis is matched, and why it is scored this way: the settings are the evidence that a
hypothesis makes the change a paper studied, so a full settings match alone crosses the default
threshold; touching a key the paper bears on, or saying something similar, only adds to it. A
text-only match never flags a hypothesis (words are cheap; a config change is what runs).
Every record is scored on its own, so a hypothesis that changes several keys is flagged when any
known negative result crosses the threshold, whatever else it matches better.

A literature file is untrusted input: it must be UTF-8, at most ``MAX_FILE_BYTES`` long, with
records nested at most ``MAX_DEPTH`` deep and valid Unicode; every problem is reported with the
file and line. Keys pasted into a record are scrubbed before it is stored.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np

from autoresearch.knowledge.embedders import Embedder, cosine_top_k
from autoresearch.knowledge.memory import as_hypothesis_dict, describe
from autoresearch.safety import scrub
from autoresearch.store import KnowledgeStore

log = logging.getLogger(__name__)

SHIPPED_FILE = Path(__file__).resolve().parent / "known_results.jsonl"
LITERATURE_KIND = "literature"  # embedding kind in the store
DIRECTIONS = ("positive", "negative", "neutral")
KNOWN_NEGATIVE = "known_negative"
REPLICATION = "replication"

# Score = W_SETTINGS · (fraction of the record's settings the hypothesis meets)
#       + W_KEYS · (1 if it overrides any key the record bears on)
#       + W_TEXT · max(0, cosine(hypothesis text, record text)).
# With the default threshold 0.6, meeting every setting (0.55 + 0.15 = 0.70) flags on its own;
# meeting half of two settings needs text similarity ≥ 0.58; keys and text alone top out at 0.45.
W_SETTINGS, W_KEYS, W_TEXT = 0.55, 0.15, 0.30
DEFAULT_THRESHOLD = 0.6
# A record is a flat object whose settings hold at most a comparison object: depth 3. Anything far
# deeper is not a record, and Python's JSON parser would recurse on it until it fails.
MAX_DEPTH = 8
MAX_FILE_BYTES = 16 << 20  # the shipped file is ~10 kB; a literature of thousands of records fits

_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "id": str,
    "title": str,
    "year": int,
    "url": str,
    "abstract": str,
    "claimed_effect": str,
    "effect_direction": str,
    "tags": list,
    "keys": list,
    "settings": dict,
}
_OPTIONAL: dict[str, type | tuple[type, ...]] = {"authors": str, "venue": str, "notes": str}
_COMPARE = {
    "gt": lambda v, b: v > b,
    "ge": lambda v, b: v >= b,
    "lt": lambda v, b: v < b,
    "le": lambda v, b: v <= b,
    "ne": lambda v, b: not math.isclose(v, b),
}
_COMPARISONS = tuple(_COMPARE)


class LiteratureError(ValueError):
    """A literature file or record is malformed; the message names the file, line and field."""


@dataclass(frozen=True, kw_only=True)
class LiteratureEntry:
    id: str
    title: str
    year: int
    url: str
    abstract: str
    claimed_effect: str
    effect_direction: str
    tags: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)
    authors: str = ""
    source: str = "shipped"

    @property
    def citation(self) -> str:
        who = f"{self.authors} " if self.authors else ""
        return f"{who}({self.year}). {self.title}. {self.url}"

    @property
    def text(self) -> str:
        """What gets embedded: the claim first, since that is what a hypothesis echoes."""
        return f"{self.title}. {self.claimed_effect} {self.abstract} Tags: {', '.join(self.tags)}. Keys: {', '.join(self.keys)}."

    def to_dict(self) -> dict[str, Any]:
        d = {
            "id": self.id,
            "title": self.title,
            "year": self.year,
            "url": self.url,
            "abstract": self.abstract,
            "claimed_effect": self.claimed_effect,
            "effect_direction": self.effect_direction,
            "tags": list(self.tags),
            "keys": list(self.keys),
            "settings": dict(self.settings),
        }
        if self.authors:
            d["authors"] = self.authors
        return d


@dataclass(frozen=True, kw_only=True)
class LiteratureMatch:
    """A known result a hypothesis would re-test: ``known_negative`` (skip unless re-testing) or
    ``replication`` (a positive or neutral result; run it and compare)."""

    status: str
    entry: LiteratureEntry
    score: float
    settings_score: float
    text_score: float
    matched: dict[str, Any] = field(default_factory=dict)  # override key → the value that met the condition
    others: tuple["LiteratureMatch", ...] = ()  # every other record above the threshold (``check``)

    @property
    def title(self) -> str:
        return self.entry.title

    @property
    def year(self) -> int:
        return self.entry.year

    @property
    def url(self) -> str:
        return self.entry.url

    @property
    def citation(self) -> str:
        return self.entry.citation

    def reason(self) -> str:
        """One line for a refusal or a report: this match, then every other one above the threshold."""
        return "; ".join(m._one_reason() for m in (self, *self.others))

    def _one_reason(self) -> str:
        what = "matches a known negative result" if self.status == KNOWN_NEGATIVE else "replicates a known result"
        settings = ", ".join(f"{k}={v}" for k, v in sorted(self.matched.items())) or "text only"
        return f"{what} (score {self.score:.2f}; {settings}): {self.entry.claimed_effect} — {self.citation}"


# ------------------------------------------------------------------------------ records
def validate_record(record: Any, where: str) -> list[str]:
    """Every problem with one record, each prefixed with ``where`` (``file:line``)."""
    if not isinstance(record, dict):
        return [f"{where}: expected a JSON object, got {type(record).__name__}"]
    problems = []
    for key, kind in _REQUIRED.items():
        if key not in record:
            problems.append(f"{where}: missing field {key!r}")
        elif not isinstance(record[key], kind) or (kind is int and isinstance(record[key], bool)):
            problems.append(f"{where}: field {key!r} must be {_type_name(kind)}, got {type(record[key]).__name__}")
    for key in record:
        if key not in _REQUIRED and key not in _OPTIONAL:
            problems.append(f"{where}: unknown field {key!r} (allowed: {sorted({*_REQUIRED, *_OPTIONAL})})")
        elif key in _OPTIONAL and not isinstance(record[key], _OPTIONAL[key]):
            problems.append(f"{where}: field {key!r} must be {_type_name(_OPTIONAL[key])}")
    if problems:
        return problems
    if not record["id"].strip():
        problems.append(f"{where}: field 'id' is empty")
    if record["effect_direction"] not in DIRECTIONS:
        problems.append(f"{where}: field 'effect_direction' must be one of {list(DIRECTIONS)}, got {record['effect_direction']!r}")
    if not record["url"].startswith(("http://", "https://")):
        problems.append(f"{where}: field 'url' must be an http(s) link, got {record['url']!r}")
    if not 1900 <= record["year"] <= 2100:
        problems.append(f"{where}: field 'year' looks wrong: {record['year']}")
    for key in ("tags", "keys"):
        if not all(isinstance(v, str) for v in record[key]):
            problems.append(f"{where}: field {key!r} must be a list of strings")
    for key, condition in record["settings"].items():
        problems += [f"{where}: settings[{key!r}]: {p}" for p in _condition_problems(condition)]
    return problems


def _type_name(kind: type | tuple[type, ...]) -> str:
    return {str: "a string", int: "an integer", list: "a list", dict: "an object"}.get(kind, str(kind))  # type: ignore[arg-type]


def _is_scalar(v: Any) -> bool:
    return isinstance(v, (str, int, float, bool))


def _condition_problems(condition: Any) -> list[str]:
    if _is_scalar(condition):
        return []
    if isinstance(condition, list):
        return [] if condition and all(_is_scalar(v) for v in condition) else ["a list condition must hold scalars"]
    if isinstance(condition, dict):
        problems = [f"unknown comparison {op!r} (use {list(_COMPARISONS)})" for op in condition if op not in _COMPARISONS]
        problems += [f"{op} needs a number" for op, v in condition.items() if op in _COMPARISONS and not _is_number(v)]
        return problems if condition else ["an empty comparison matches nothing"]
    return [f"a condition is a scalar, a list of scalars or a comparison object, got {type(condition).__name__}"]


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def condition_holds(condition: Any, value: Any) -> bool:
    """Does an override value meet a record's condition?"""
    if isinstance(condition, list):
        return any(condition_holds(c, value) for c in condition)
    if isinstance(condition, dict):
        if not _is_number(value):
            return False
        return all(_COMPARE[op](value, bound) for op, bound in condition.items())
    if isinstance(condition, bool) or isinstance(value, bool):
        return type(condition) is type(value) and condition == value
    if _is_number(condition) and _is_number(value):
        return math.isclose(condition, value, rel_tol=1e-9, abs_tol=1e-12)
    return str(condition) == str(value)


def load_jsonl(path: Path | str, *, source: Optional[str] = None) -> list[LiteratureEntry]:
    """Read and validate a literature file; all problems are reported together, by file and line."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise LiteratureError(f"{path}: literature file is {size} bytes, more than the {MAX_FILE_BYTES} allowed")
        data = path.read_bytes()
    except OSError as err:
        raise LiteratureError(f"{path}: cannot read literature file: {err}") from err
    try:
        lines = data.decode("utf-8").splitlines()
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise LiteratureError(
            f"{path}:{line}: not UTF-8 (byte {data[err.start]:#04x} at column {column}); save the file as UTF-8"
        ) from None
    problems: list[str] = []
    records: list[dict] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("//"):
            continue
        where = f"{path}:{number}"
        record, problem = _parse_line(line)
        if problem:
            problems.append(f"{where}: {problem}")
            continue
        found = validate_record(record, where)
        if not found and record["id"] in seen:
            found = [f"{where}: id {record['id']!r} already used on line {seen[record['id']]}"]
        problems += found
        if not found:
            seen[record["id"]] = number
            records.append(record)
    if problems:
        raise LiteratureError("invalid literature file:\n  " + "\n  ".join(problems))
    return [entry_from_record(r, source=source or str(path)) for r in records]


def _parse_line(line: str) -> tuple[Any, Optional[str]]:
    """``(record, None)`` or ``(None, problem)`` for one line of a literature file."""
    depth = _bracket_depth(line)
    if depth > MAX_DEPTH:
        return None, f"nested {depth} levels deep, more than the {MAX_DEPTH} a record can use"
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        return None, f"not valid JSON ({err.msg} at column {err.colno})"
    try:
        json.dumps(record, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return None, "holds a lone surrogate escape (\\ud800-\\udfff), which is not valid Unicode"
    return record, None


def _bracket_depth(line: str) -> int:
    """The deepest ``[``/``{`` nesting of a JSON line, brackets inside strings not counted."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in line:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            continue
        if ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def entry_from_record(record: Mapping[str, Any], *, source: str) -> LiteratureEntry:
    return LiteratureEntry(
        id=record["id"],
        title=record["title"],
        year=record["year"],
        url=record["url"],
        abstract=record["abstract"],
        claimed_effect=record["claimed_effect"],
        effect_direction=record["effect_direction"],
        tags=tuple(record["tags"]),
        keys=tuple(record["keys"]),
        settings=dict(record["settings"]),
        authors=record.get("authors", ""),
        source=source,
    )


# ------------------------------------------------------------------------------ literature
class Literature:
    """The shipped known results plus the user's own (kept in the store), matched against hypotheses."""

    def __init__(
        self,
        store: KnowledgeStore,
        embedder: Embedder,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        include_shipped: bool = True,
    ):
        self.store = store
        self.embedder = embedder
        self.threshold = threshold
        self.include_shipped = include_shipped
        self._entries: Optional[list[LiteratureEntry]] = None
        self._matrix: Optional[np.ndarray] = None

    @property
    def entries(self) -> list[LiteratureEntry]:
        if self._entries is None:
            by_id: dict[str, LiteratureEntry] = {}
            if self.include_shipped:
                by_id.update({e.id: e for e in load_jsonl(SHIPPED_FILE, source="shipped")})
            for record in self.store.literature():
                where = f"{self.store.path} (literature {record.get('id')!r})"
                problems = validate_record(record, where)
                if problems:  # written by an older version or by hand: skip it, say so, go on
                    log.warning("skipping invalid literature record: %s", "; ".join(problems))
                    continue
                by_id[record["id"]] = entry_from_record(record, source="user")
            self._entries = list(by_id.values())
        return self._entries

    def add_file(self, path: Path | str) -> int:
        """Validate a JSONL file and add its records to the store (replacing records of the same id)."""
        entries = load_jsonl(path)
        records = []
        for entry in entries:
            record = entry.to_dict()
            clean = scrub(record)
            if clean != record:
                log.warning("literature: record %r of %s held what looks like a secret; it is stored redacted", clean["id"], path)
            records.append(clean)
        count = self.store.put_literature(records, source=str(Path(path).resolve()))
        self._entries, self._matrix = None, None
        log.info("literature: added %d record(s) from %s", count, path)
        return count

    def _vectors(self) -> np.ndarray:
        """Entry vectors, cached in the store by embedder name and re-embedded when an entry's text changes."""
        if self._matrix is None:
            entries = self.entries
            ids, texts, matrix = self.store.embeddings(LITERATURE_KIND, self.embedder.name)
            cached = {ref: (text, matrix[i]) for i, (ref, text) in enumerate(zip(ids, texts))}
            stale = [e for e in entries if cached.get(e.id, ("",))[0] != e.text]
            if stale:
                vectors = self.embedder.embed([e.text for e in stale])
                for e, vec in zip(stale, vectors):
                    self.store.put_embedding(LITERATURE_KIND, e.id, e.text, vec, self.embedder.name)
                    cached[e.id] = (e.text, vec)
            dim = next(iter(cached.values()))[1].shape[0] if cached else 0
            self._matrix = np.stack([cached[e.id][1] for e in entries]) if entries else np.zeros((0, dim), np.float32)
        return self._matrix

    def search(self, text: str, k: int = 5) -> list[tuple[LiteratureEntry, float]]:
        """Records whose text is nearest ``text`` (cosine), best first."""
        matrix = self._vectors()
        idx, scores = cosine_top_k(self.embedder.embed([text])[0], matrix, k)
        return [(self.entries[int(i)], float(s)) for i, s in zip(idx, scores)]

    def matches(self, hypothesis: Any, k: int = 3, *, min_score: float = 0.0,
                context: Optional[Mapping[str, Any]] = None) -> list[LiteratureMatch]:
        """The records a hypothesis bears on, best first, scored as the module docstring says.

        ``context`` is the flattened config the overrides apply to: a record whose settings the
        resulting config contradicts (a result about runs *without* QK-norm, for a config that keeps
        it) does not bear on the hypothesis at all.
        """
        h = as_hypothesis_dict(hypothesis)
        overrides = h["overrides"]
        effective = {**(context or {}), **overrides}
        entries = self.entries
        if not entries:
            return []
        text_scores = self._vectors() @ self.embedder.embed([describe(h, None)])[0]
        out = []
        for entry, text_score in zip(entries, text_scores):
            if any(key in effective and not condition_holds(cond, effective[key]) for key, cond in entry.settings.items()):
                continue
            matched = {k_: overrides[k_] for k_, cond in entry.settings.items() if k_ in overrides and condition_holds(cond, overrides[k_])}
            settings_score = len(matched) / len(entry.settings) if entry.settings else 0.0
            touches = bool(set(overrides) & (set(entry.keys) | set(entry.settings)))
            t = max(0.0, float(text_score))
            score = W_SETTINGS * settings_score + W_KEYS * touches + W_TEXT * t
            if score < min_score:
                continue
            status = KNOWN_NEGATIVE if entry.effect_direction == "negative" else REPLICATION
            out.append(LiteratureMatch(status=status, entry=entry, score=score, settings_score=settings_score, text_score=t, matched=matched))
        # Best score first; on a tie a negative result comes first (the cautious reading).
        out.sort(key=lambda m: (-m.score, m.status != KNOWN_NEGATIVE))
        return out[:k]

    def check(self, hypothesis: Any, context: Optional[Mapping[str, Any]] = None) -> Optional[LiteratureMatch]:
        """The match that decides, with every other record at or above ``threshold`` in ``others``;
        None when none is. Any known negative above the threshold decides (the best-scoring one),
        whatever else matches better: a ``known_negative`` match means the campaign flags the
        hypothesis and skips it unless ``campaign.retest_known_results``."""
        found = self.matches(hypothesis, k=len(self.entries), min_score=self.threshold, context=context)
        if not found:
            return None
        negatives = [m for m in found if m.status == KNOWN_NEGATIVE]
        first = negatives[0] if negatives else found[0]
        return dataclasses.replace(first, others=tuple(m for m in found if m is not first))
