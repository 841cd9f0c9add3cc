"""The playbook agent: known research ideas, tried in the order the store makes most promising.

Offline and deterministic. The library is YAML (``playbook.yaml`` ships with the package; a user
may point ``agent.playbook.path`` at their own), checked against a JSON Schema so a typo names the
file, the idea and the key. Ideas build on the incumbent: a proposal is the incumbent's overrides
plus the idea's, so the campaign ratchets forward as autoresearch does.

Ranking is a transparent heuristic, not a model: an idea gains from finished trials that changed
the same keys (or came from an idea with the same tags) and were kept, and loses from similar
ones that were discarded or failed; semantic-memory lines that mention its keys or tags nudge it
the same way. Coarse before fine: an idea marked ``refinement`` (a finer step on a key others
explore coarsely) waits until every other idea has been tried. When no idea is left, the agent
nudges one key of the incumbent to a neighbouring value and says so in the rationale.
"""

from __future__ import annotations

import logging
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

from autoresearch.agents.base import AgentContext, TrialRecord, history_seen
from autoresearch.config import ConfigError, ConfigProblem
from autoresearch.config.schema import PlaybookAgentConfig
from autoresearch.search import Hypothesis, Proposal, Refusal, validate_hypothesis

log = logging.getLogger(__name__)

SHIPPED_PLAYBOOK = Path(__file__).resolve().parent / "playbook.yaml"

_SCALAR = {"type": ["string", "number", "boolean"]}
_KEY_PATTERN = r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)+$"  # a dotted config key, nothing else
_RELATIVE = {
    "type": "object",
    "properties": {"times": {"type": "number", "exclusiveMinimum": 0}, "from": {"type": "string", "pattern": _KEY_PATTERN}},
    "required": ["times"],
    "additionalProperties": False,
}
PLAYBOOK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "version": {"const": 1},
        "ideas": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "string", "pattern": "^[a-z0-9_]+$"},
                    "title": {"type": "string", "minLength": 1},
                    "overrides": {
                        "type": "object",
                        "minProperties": 1,
                        "propertyNames": {"pattern": _KEY_PATTERN},
                        "additionalProperties": {"oneOf": [_SCALAR, _RELATIVE]},
                    },
                    "rationale": {"type": "string", "minLength": 1},
                    "expected_effect": {"type": "string", "minLength": 1},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "references": {"type": "array", "items": {"type": "string"}},
                    "refinement": {"type": "boolean"},
                },
                "required": ["id", "title", "overrides", "rationale", "expected_effect", "tags"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["ideas"],
    "additionalProperties": False,
}

# Outcome weights for ranking: how much a similar past trial moves an idea up (+) or down (-).
_KEPT, _DISCARDED, _FAILED = 1.0, -0.5, -1.0
_NEIGHBOUR = 0.5
_POSITIVE_WORDS = ("kept", "improv", "better", "helped", "confirmed")
_NEGATIVE_WORDS = ("discard", "worse", "hurt", "crash", "diverg", "timeout", "no gain", "no effect", "failed", "refuted")
_DELTA = re.compile(r"δ\s*([+-])\d")  # "Δ -0.0400 vs baseline", lower-cased
_SAMPLE_TRIES = 20
_IDEA_TAG = re.compile(r"^playbook idea ([a-z0-9_]+):")


@dataclass(frozen=True, kw_only=True)
class Idea:
    id: str
    title: str
    overrides: dict[str, Any]
    rationale: str
    expected_effect: str
    tags: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    refinement: bool = False  # a finer step on a key other ideas explore coarsely: waits for the first looks


@dataclass(frozen=True, kw_only=True)
class Playbook:
    """A validated library of ideas, in file order (the prior ranking)."""

    ideas: tuple[Idea, ...]
    path: str

    @classmethod
    def load(cls, path: str | Path = "") -> "Playbook":
        """Load and validate a playbook; ``""`` means the shipped one. Raises ``ConfigError``."""
        file = Path(path).expanduser() if path else SHIPPED_PLAYBOOK
        where = str(file)
        if not file.is_file():
            raise ConfigError([ConfigProblem("agent.playbook.path", f"no playbook file at {where}; use \"\" for the shipped playbook")])
        try:
            raw = yaml.safe_load(file.read_text())
        except yaml.YAMLError as err:
            raise ConfigError([ConfigProblem("<yaml>", f"not valid YAML: {err}", where)]) from None
        import jsonschema

        validator = jsonschema.Draft202012Validator(PLAYBOOK_SCHEMA)
        problems = [
            ConfigProblem(_json_path(err.absolute_path, raw), err.message, where)
            for err in sorted(validator.iter_errors(raw), key=lambda e: list(map(str, e.absolute_path)))
        ]
        if not problems:
            seen: set[str] = set()
            for i, item in enumerate(raw["ideas"]):
                if item["id"] in seen:
                    problems.append(ConfigProblem(f"ideas[{i}].id", f"duplicate id {item['id']!r}", where))
                seen.add(item["id"])
        if problems:
            raise ConfigError(problems)
        ideas = tuple(
            Idea(
                id=item["id"],
                title=item["title"],
                overrides=dict(item["overrides"]),
                rationale=" ".join(item["rationale"].split()),
                expected_effect=item["expected_effect"],
                tags=tuple(item.get("tags", ())),
                references=tuple(item.get("references", ())),
                refinement=bool(item.get("refinement", False)),
            )
            for item in raw["ideas"]
        )
        return cls(ideas=ideas, path=where)


def _json_path(path: Any, raw: Any) -> str:
    """``deque(['ideas', 3, 'overrides'])`` → ``ideas[3](qk_norm).overrides`` (the id helps find it)."""
    out = ""
    node = raw
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
            try:
                node = node[part]
                if isinstance(node, dict) and isinstance(node.get("id"), str):
                    out += f"({node['id']})"
            except (IndexError, KeyError, TypeError):
                node = None
        else:
            out += f".{part}" if out else str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out or "<root>"


@dataclass
class PlaybookAgent:
    """Proposes playbook ideas on top of the incumbent, best-ranked first, then local mutations."""

    playbook: Playbook
    seed: int = 0
    name: str = "playbook"
    _proposed: set[str] = field(default_factory=set)  # idea ids already handed out
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    @classmethod
    def from_config(cls, cfg: PlaybookAgentConfig, *, seed: int = 0, name: str = "playbook") -> "PlaybookAgent":
        return cls(playbook=Playbook.load(cfg.path), seed=seed, name=name)

    # ------------------------------------------------------------------ protocol
    def observe(self, record: TrialRecord) -> None:
        idea = _idea_of(record)
        if idea is not None:
            self._proposed.add(idea)  # after a resume, history tells which ideas ran

    def propose(self, ctx: AgentContext) -> Proposal:
        for record in ctx.history:
            self.observe(record)
        current = _current(ctx)
        seen = history_seen(ctx)  # an idea whose config already ran counts as tried
        ideas = {i.id: i for i in self.playbook.ideas}
        for idea_id, score in self.rank(ctx):
            idea = ideas[idea_id]
            overrides = self._apply(idea, ctx, current)
            if overrides is None:
                self._proposed.add(idea.id)
                continue
            rationale = f"playbook idea {idea.id}: {idea.title}. {idea.rationale}"
            if score:
                rationale += f" (ranked {score:+.2f} from similar past trials)"
            result = validate_hypothesis(
                {"overrides": overrides, "rationale": rationale, "expected_effect": idea.expected_effect},
                space=ctx.space, base=ctx.base, agent=self.name, seen=seen,
            )
            self._proposed.add(idea.id)
            if isinstance(result, Hypothesis):
                return Proposal(hypothesis=_with_parent(result, ctx))
            log.debug("playbook idea %s skipped: %s", idea.id, result.reason)
        return self._mutate(ctx, current, seen)

    # ------------------------------------------------------------------ ranking
    def rank(self, ctx: AgentContext) -> list[tuple[str, float]]:
        """Untried ideas with their scores, best first (file order breaks ties).

        Coarse before fine: a ``refinement`` idea (the learning rate's ×2 / ÷2 after its ×3 / ×10
        / ÷3) comes after every other untried idea, however well similar trials did; scores order
        the ideas within each of the two groups. Without this, a kept step on one key pulls its
        refinements ahead of a first look at every other key, and a search spends its early trials
        tuning one knob before it knows which others matter.
        """
        by_id = {i.id: i for i in self.playbook.ideas}
        scored = []
        for order, idea in enumerate(self.playbook.ideas):
            if idea.id in self._proposed:
                continue
            score = 0.0
            for record in ctx.history:
                weight = _outcome_weight(record)
                if weight:
                    score += weight * _similarity(idea, record, ctx.base, by_id)
            for line in ctx.neighbours:
                score += _NEIGHBOUR * _neighbour_signal(idea, line)
            scored.append((idea.refinement, -round(score, 9), order, idea.id, score))
        scored.sort()
        return [(idea_id, score) for *_, idea_id, score in scored]

    # ------------------------------------------------------------------ building proposals
    def _apply(self, idea: Idea, ctx: AgentContext, current: dict[str, Any]) -> Optional[dict[str, Any]]:
        """Incumbent overrides plus the idea's values; None if a key is not searchable or nothing changes."""
        params = ctx.space.parameters
        values: dict[str, Any] = {}
        for key, spec in idea.overrides.items():
            if key not in params or params[key].type == "fixed":
                return None
            if isinstance(spec, dict):
                source = spec.get("from", key)
                start = current.get(source)
                if isinstance(start, bool) or not isinstance(start, (int, float)):
                    return None
                value: Any = start * spec["times"]
                if params[key].type == "range":
                    # A step past the range goes to its edge: ×3 from near the top still probes the
                    # largest value the space allows (and is a no-op, skipped, once there).
                    lo, hi = params[key].bounds
                    value = min(max(value, lo), hi)
                if params[key].value_type == "int":
                    value = int(round(value))
                else:
                    value = float(f"{value:.6g}")  # ×3 then ×⅓ lands back on the same value, not next to it
            else:
                value = spec
            values[key] = value
        if all(current.get(k) == v for k, v in values.items()):
            return None  # the incumbent already does this
        return on_incumbent(ctx, values)

    def _mutate(self, ctx: AgentContext, current: dict[str, Any], seen: Any) -> Proposal:
        """Every idea used: move one key of the incumbent to a neighbouring value.

        Candidates one step away come first (in a seeded random order), then two steps, then three,
        so the agent keeps finding untried local moves long after the ideas run out.
        """
        params = ctx.space.parameters
        keys = [k for k, p in params.items() if p.type != "fixed" and ctx.space.is_active(k, current)]
        by_distance: dict[int, list[tuple[str, Any]]] = {}
        for key in keys:
            for rank, value in enumerate(neighbour_values(params[key], current.get(key))):
                by_distance.setdefault(min(rank // 2 + 1, 3), []).append((key, value))  # down/up pairs
        best = ctx.incumbent.val_bpb if ctx.incumbent and ctx.incumbent.val_bpb is not None else ctx.baseline_bpb
        where = f"the incumbent (val_bpb {best:.4f})" if best is not None else "the baseline"
        last: list[Refusal] = []
        for distance in sorted(by_distance):
            candidates = by_distance[distance]
            self._rng.shuffle(candidates)
            for key, new in candidates:
                overrides = on_incumbent(ctx, {key: new})
                if not overrides:
                    continue
                rationale = (
                    f"Playbook exhausted: a local step around {where}, moving {key} from "
                    f"{current.get(key)!r} to the neighbouring value {new!r} to probe its sensitivity."
                )
                result = validate_hypothesis(
                    {"overrides": overrides, "rationale": rationale, "expected_effect": f"val_bpb sensitivity to {key}"},
                    space=ctx.space, base=ctx.base, agent=self.name, seen=seen,
                )
                if isinstance(result, Hypothesis):
                    return Proposal(hypothesis=_with_parent(result, ctx))
                last = [result]
        for _ in range(_SAMPLE_TRIES):
            result = validate_hypothesis(
                {"overrides": ctx.space.sample(self._rng, ctx.base), "expected_effect": "unknown: exploration",
                 "rationale": f"Playbook and the neighbourhood of {where} exhausted: a random valid point."},
                space=ctx.space, base=ctx.base, agent=self.name, seen=seen,
            )
            if isinstance(result, Hypothesis):
                return Proposal(hypothesis=result)
            last = [result]
        log.info("playbook agent found nothing untried to propose")
        return Proposal(hypothesis=None, refusals=last)


_MISSING = object()


def on_incumbent(ctx: AgentContext, values: dict[str, Any]) -> dict[str, Any]:
    """The incumbent's overrides with ``values`` applied, minus what equals the baseline or fell inactive.

    Switching ``model.pos_encoding`` to alibi retires an incumbent's ``model.rope_base``; leaving it
    in would make the hypothesis refused as an inactive key.
    """
    merged = dict(ctx.incumbent.overrides) if ctx.incumbent is not None else {}
    merged.update(values)
    full = {**ctx.base, **merged}
    return {k: v for k, v in merged.items() if ctx.base.get(k, _MISSING) != v and ctx.space.is_active(k, full)}


def _current(ctx: AgentContext) -> dict[str, Any]:
    current = dict(ctx.base)
    if ctx.incumbent is not None:
        current.update(ctx.incumbent.overrides)
    return current


def _with_parent(h: Hypothesis, ctx: AgentContext) -> Hypothesis:
    inc = ctx.incumbent
    parent = inc.trial_id if inc is not None and isinstance(inc.trial_id, int) and inc.trial_id >= 0 else None
    if parent is None or h.parent is not None:
        return h
    return Hypothesis(overrides=h.overrides, rationale=h.rationale, expected_effect=h.expected_effect, agent=h.agent, parent=parent)


def _idea_of(record: TrialRecord) -> Optional[str]:
    m = _IDEA_TAG.match(record.rationale or "")
    return m.group(1) if m else None


def _outcome_weight(record: TrialRecord) -> float:
    if record.refused:
        return 0.0
    if record.kept:
        return _KEPT
    if record.failed:
        return _FAILED
    return _DISCARDED


def _similarity(idea: Idea, record: TrialRecord, base: dict[str, Any], ideas: dict[str, Idea]) -> float:
    """Jaccard overlap of changed keys, or of tags when the record came from a playbook idea."""
    changed = {k for k, v in record.overrides.items() if base.get(k, _MISSING) != v}
    keys = set(idea.overrides)
    key_sim = len(keys & changed) / len(keys | changed) if changed else 0.0
    source = ideas.get(_idea_of(record) or "")
    tag_sim = 0.0
    if source is not None and source.id != idea.id and (idea.tags or source.tags):
        tags, other = set(idea.tags), set(source.tags)
        tag_sim = len(tags & other) / len(tags | other)
    return max(key_sim, tag_sim)


def _neighbour_signal(idea: Idea, line: str) -> float:
    """+1 / -1 when a memory line about the idea's keys or tags reports a gain / a loss, else 0.

    Memory lines end in an outcome (``outcome: val_bpb 2.51 (Δ -0.04 vs baseline), kept``); the
    sign of the delta decides, else words like kept / discarded / crashed.
    """
    text = line.lower()
    mentions = any(f"{k.lower()}=" in text for k in idea.overrides) or idea.id in text or any(
        re.search(rf"\b{re.escape(t.lower())}\b", text) for t in idea.tags
    )
    if not mentions:
        return 0.0
    outcome = text.rsplit("outcome:", 1)[-1]
    delta = _DELTA.search(outcome)
    if delta:
        return -1.0 if delta.group(1) == "+" else 1.0  # lower val_bpb is better
    good = any(w in outcome for w in _POSITIVE_WORDS)
    bad = any(w in outcome for w in _NEGATIVE_WORDS)
    return float(good) - float(bad)


def neighbour_values(param: Any, current: Any, steps: int = 3) -> list[Any]:
    """Values near ``current`` in the parameter's domain, nearest first, alternating down and up.

    Ranges step by ×2 / ÷2 on a log scale and by a tenth of the range otherwise (at least 1 for
    integers); ordered choices step to adjacent values; unordered choices list every other value.
    """
    out: list[Any] = []

    def add(v: Any) -> None:
        if v is not None and v != current and v not in out:
            out.append(v)

    if param.type == "choice":
        values = list(param.values)
        ordered = param.ordered or all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        if current in values and ordered:
            i = values.index(current)
            for k in range(1, len(values)):
                for j in (i - k, i + k):
                    if 0 <= j < len(values):
                        add(values[j])
        else:
            for v in values:
                add(v)
        return out
    if param.type != "range":
        return out
    lo, hi = param.bounds
    if current is None or isinstance(current, bool):
        current = (lo + hi) / 2
    for k in range(1, steps + 1):
        for sign in (-1, 1):
            if param.log_scale and lo > 0 and current > 0:
                v = current * 2.0 ** (sign * k)
            else:
                v = current + sign * k * (hi - lo) / 10
            if param.value_type == "int":
                v = current + sign * max(k, abs(int(round(v)) - current))
            if lo <= v <= hi:
                add(v if param.value_type == "int" else float(f"{v:.6g}"))
    return out


def neighbour_value(param: Any, current: Any, rng: random.Random) -> Any:
    """One of the nearest values to ``current`` (None if there is none)."""
    near = neighbour_values(param, current, steps=1)
    return rng.choice(near) if near else None
