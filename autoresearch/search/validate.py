"""The one gate every proposal passes before anything runs: ``validate_hypothesis``.

Proposals come from agents, and an LLM agent's proposal is untrusted text. It stays data from
end to end: JSON is parsed with ``json.loads`` (never eval), keys and values are checked against
a closed allowlist (the search space), and only then rendered as Hydra override strings. The
checks run in a fixed order, and the first failure becomes a ``Refusal`` whose ``code`` says
which check failed and whose ``reason`` is one sentence naming the key:

==============  ==========================================================================
code            meaning
==============  ==========================================================================
schema          not JSON, not the hypothesis shape (missing or extra fields, wrong types)
forbidden       Hydra grammar, ``hydra``/``_target_`` keys, interpolations, non-scalar
                values, or a key no search may touch (seed, data.path, budget, ...)
unknown_key     a config key that this search space does not list
type            a value of the wrong type ("3" for an int, 3.5 for an int, 1 for a bool)
range           outside the bounds, not one of the choices, or a change to a fixed key
inactive        a key that does not apply given its parent (rope_base without rope)
constraint      the merged config breaks one of the space's constraints
duplicate       the merged config was already run, or the overrides change nothing
compose         Hydra could not compose the overrides
invalid         anything else that made the check itself fail (recorded, never raised)
==============  ==========================================================================

Whatever an agent returns, in any bytes or Python value, ends as a ``Refusal`` with one of these
codes or as a valid ``Hypothesis``; ``validate_hypothesis`` never raises for its ``raw``. The
JSON Schema bounds every field (string lengths, how many overrides, ``parent`` within SQLite's
INTEGER), values are canonicalised once (``autoresearch.search.canonical``: floats keep 6
significant digits, ``-0.0`` is ``0.0``, integers fit in 64 bits) before bounds, duplicates and
the fingerprint see them, and free text (rationale, expected effect) is normalised by
``clean_text`` (lone surrogates and control characters become U+FFFD). What a refusal keeps of
the raw answer is bounded, JSON-able and clean in the same way, so the store can hold it.

Reasons never echo a string that contains an interpolation (``${oc.env:OPENAI_API_KEY}`` is
described, not repeated), and echo other untrusted text only truncated and quoted.
"""

from __future__ import annotations

import json
import logging
import math
import re
from functools import cache
from pathlib import Path
from typing import Any, Callable, Optional

from autoresearch.search.canonical import INT_MAX, INT_MIN, clean_text, config_fingerprint, same_value
from autoresearch.search.hypothesis import Hypothesis, Refusal, Scalar
from autoresearch.search.keys import KEY_PATTERN, forbidden_reason
from autoresearch.search.space import SearchSpace

log = logging.getLogger(__name__)

SCHEMA_PATH = Path(__file__).resolve().parent / "hypothesis.schema.json"
MAX_RAW_CHARS = 100_000  # an LLM answer longer than this is not a hypothesis
# What a refusal keeps of the raw answer: JSON nested at most this deep, at most this many items
# per list or object, strings clipped to MAX_RAW_CHARS.
MAX_RAW_DEPTH = 16
MAX_RAW_ITEMS = 256
_FENCE = re.compile(r"```[A-Za-z]*[ \t]*\n?(.*?)```", re.DOTALL)
_INTERPOLATION = ("${", "$(")
# Described, never shown: a reason must not itself contain an interpolation someone might resolve.
_NEVER_RESOLVED = (
    "contains an interpolation (a dollar sign before a brace or parenthesis), which is never resolved"
)
_BAD_KEY_CHARS = re.compile(r"[\s,=\"'`]")
_INSTANTIATION = ("_target_", "_recursive_", "_convert_", "_partial_", "_args_")

Seen = Callable[[str], Optional[str]]
Compose = Callable[[list[str]], Any]


class _Refused(Exception):
    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason


def validate_hypothesis(
    raw: Any,
    *,
    space: SearchSpace,
    base: dict[str, Any],
    agent: str,
    seen: Optional[Seen] = None,
    compose: Optional[Compose] = None,
) -> Hypothesis | Refusal:
    """Check one proposal; return a ``Hypothesis`` ready to run or the ``Refusal`` saying why not.

    ``raw`` is a dict, a ``Hypothesis``, or text holding one JSON object (a fenced ```json block
    is found inside chatter). ``base`` is the flattened baseline config. ``seen(fingerprint)``
    returns a pointer to an earlier run of the same config ("trial 12 of campaign x") or None;
    the fingerprint is ``config_fingerprint(base | fixed values | overrides)``, which equals
    ``config_fingerprint({**base, **hypothesis.overrides})`` for the returned hypothesis, so the
    caller can fingerprint finished trials the same way.
    ``compose(override_strings)`` should raise if Hydra cannot build the config.

    The returned hypothesis carries values cast to the config's types, plus the space's fixed
    values where they differ from ``base``, so its ``override_strings()`` reproduce the trial.
    """
    try:
        return _validate(raw, space=space, base=base, agent=agent, seen=seen, compose=compose)
    except _Refused as r:
        log.info("refused a proposal from %s (%s): %s", agent, r.code, r.reason)
        return Refusal(reason=r.reason, raw=_kept(raw), agent=agent, code=r.code)
    except Exception as err:  # noqa: BLE001 - the rule: an agent's answer never ends the campaign
        log.warning("a proposal from %s could not be checked (%s); refused", agent, type(err).__name__, exc_info=True)
        reason = f"The proposal could not be checked ({type(err).__name__})."
        return Refusal(reason=reason, raw=_kept(raw), agent=agent, code="invalid")


def _kept(raw: Any) -> Any:
    """``_as_data(raw)``, or a description when even that fails (a Hypothesis too deep to copy)."""
    try:
        return _as_data(raw)
    except Exception:  # noqa: BLE001 - keeping the evidence must not end the campaign either
        return f"<{type(raw).__name__} that could not be kept as data>"


def _as_data(raw: Any, depth: int = 0) -> Any:
    """What was sent, as bounded, clean JSON data that any store can keep.

    Strings are cleaned (``clean_text``) and clipped; integers beyond 64 bits, non-finite
    floats and non-JSON values become short descriptions; nesting below ``MAX_RAW_DEPTH`` and
    items past ``MAX_RAW_ITEMS`` are cut, with a marker saying so.
    """
    if isinstance(raw, Hypothesis):
        raw = raw.to_dict()
    if isinstance(raw, (bytes, bytearray)):
        raw = bytes(raw[: 4 * MAX_RAW_CHARS]).decode("utf-8", errors="replace")
    if raw is None or isinstance(raw, bool):
        return raw
    if isinstance(raw, str):
        return clean_text(_clip(raw, MAX_RAW_CHARS))
    if isinstance(raw, int):
        return int(raw) if INT_MIN <= raw <= INT_MAX else f"<integer of {raw.bit_length()} bits>"
    if isinstance(raw, float):
        return raw if math.isfinite(raw) else repr(raw)
    if depth >= MAX_RAW_DEPTH and isinstance(raw, (dict, list, tuple)):
        return "<nested too deeply>"
    if isinstance(raw, dict):
        items = list(raw.items())
        out = {_key_text(k): _as_data(v, depth + 1) for k, v in items[:MAX_RAW_ITEMS]}
        if len(items) > MAX_RAW_ITEMS:
            out["<cut>"] = f"{len(items) - MAX_RAW_ITEMS} more fields"
        return out
    if isinstance(raw, (list, tuple)):
        out_list = [_as_data(v, depth + 1) for v in raw[:MAX_RAW_ITEMS]]
        if len(raw) > MAX_RAW_ITEMS:
            out_list.append(f"<{len(raw) - MAX_RAW_ITEMS} more items cut>")
        return out_list
    return f"<{type(raw).__name__}>"


def _key_text(key: Any) -> str:
    return clean_text(_clip(key, 200)) if isinstance(key, str) else f"<{type(key).__name__} key>"


def _validate(
    raw: Any,
    *,
    space: SearchSpace,
    base: dict[str, Any],
    agent: str,
    seen: Optional[Seen],
    compose: Optional[Compose],
) -> Hypothesis:
    data = _parse(raw)  # (a)
    _check_schema(data)  # (b)
    overrides = _normalise_overrides(data["overrides"])
    _check_forbidden(data, overrides)  # (c)
    eff = space.effective_base(base)
    cast = _check_allowlist(overrides, space)  # (d)
    merged = {**eff, **cast}
    for key in cast:  # (e)
        if not space.is_active(key, merged):
            raise _Refused("inactive", _inactive_reason(space, key, merged))
    broken = space.check_constraints(merged)  # (f)
    if broken:
        raise _Refused("constraint", f"{broken[0][0].upper()}{broken[0][1:]}.")
    # Canonical form: a value equal to the baseline's changes nothing (Ax names every parameter of
    # its points), so it is dropped; a report, an ablation or a prompt then lists only real changes.
    changed = {k: v for k, v in cast.items() if not same_value(v, eff.get(k))}
    if not changed:  # (g)
        what = ", ".join(f"{k}={v!r}" for k, v in cast.items())
        detail = f": every value equals the baseline ({what})" if cast else ": it has no overrides"
        raise _Refused("duplicate", f"The proposal changes nothing{detail}.")
    if seen is not None:
        pointer = seen(config_fingerprint(merged))
        if pointer:
            raise _Refused("duplicate", f"This exact configuration was already run ({pointer}).")
    pinned = {k: v for k, v in space.fixed_values().items() if not same_value(v, base.get(k)) and k not in cast}
    parent = data.get("parent")
    hypothesis = Hypothesis(
        overrides={**changed, **pinned},
        rationale=clean_text(data["rationale"]),
        expected_effect=clean_text(data["expected_effect"]),
        agent=agent,
        parent=None if parent is None else int(parent),  # the schema bounds it; 3.0 is 3
    )
    if compose is not None:  # (h)
        try:
            compose(hypothesis.override_strings())
        except Exception as err:  # noqa: BLE001 - any failure to compose is a refusal, not a crash
            first = _clip((str(err).strip().splitlines() or [type(err).__name__])[0], 200).rstrip(".")
            raise _Refused("compose", f"Hydra could not compose the overrides: {first}.") from None
    return hypothesis


# --------------------------------------------------------------------------- (a) parse
def _parse(raw: Any) -> dict[str, Any]:
    if isinstance(raw, Hypothesis):
        return raw.to_dict()
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _Refused("schema", "The proposal is not UTF-8 text.") from None
    if not isinstance(raw, str):
        raise _Refused("schema", f"A proposal must be a JSON object, got {type(raw).__name__}.")
    if len(raw) > MAX_RAW_CHARS:
        raise _Refused("schema", f"The proposal is longer than {MAX_RAW_CHARS} characters.")
    text = _extract_json(raw)
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant)
    except _Refused:
        raise
    except (ValueError, RecursionError) as err:
        detail = " (nested too deeply)" if isinstance(err, RecursionError) else ""
        if isinstance(err, json.JSONDecodeError):
            detail = f" ({err.msg} at line {err.lineno} column {err.colno})"
        raise _Refused("schema", f"The proposal is not valid JSON{detail}.") from None
    if not isinstance(data, dict):
        raise _Refused("schema", f"A proposal must be a JSON object, got a JSON {type(data).__name__}.")
    return data


def _extract_json(text: str) -> str:
    """The JSON inside an answer: a fenced block if there is one, else the outermost ``{...}``."""
    fenced = _FENCE.search(text)
    if fenced:
        return fenced.group(1).strip()
    stripped = text.strip()
    if stripped.startswith("{") or stripped.startswith("["):
        return stripped
    start, end = stripped.find("{"), stripped.rfind("}")
    return stripped[start : end + 1] if 0 <= start < end else stripped


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _Refused("schema", f"The proposal gives the field {_quote(k)} twice.")
        out[k] = v
    return out


def _no_constant(name: str) -> Any:
    raise _Refused("schema", f"The proposal uses {name}, which is not a JSON number.")


# --------------------------------------------------------------------------- (b) schema
@cache
def _hypothesis_validator() -> Any:
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _check_schema(data: dict[str, Any]) -> None:
    as_dict = isinstance(data.get("overrides"), dict)
    for err in sorted(_hypothesis_validator().iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        path = list(err.absolute_path)
        if as_dict and len(path) == 2 and path[0] == "overrides" and err.validator == "type":
            continue  # a nested or null value: refused as forbidden in (c), with its key named
        raise _Refused("schema", _schema_reason(err, path))


def _schema_reason(err: Any, path: list[Any]) -> str:
    """Compose the sentence ourselves: jsonschema's own messages repeat the (untrusted) instance."""
    where = _field(path)
    if err.validator == "required":
        missing = [r for r in err.validator_value if r not in err.instance]
        return f"The proposal lacks the required field {', '.join(repr(m) for m in missing)}."
    if err.validator == "additionalProperties":
        allowed = err.schema.get("properties", {})
        extra = [_quote(k) for k in err.instance if k not in allowed]
        return f"The proposal has the unexpected field {', '.join(extra)}; allowed: {', '.join(allowed)}."
    if err.validator == "type":
        expected = err.validator_value if isinstance(err.validator_value, list) else [err.validator_value]
        return f"{where} must be {' or '.join(expected)}."
    if err.validator == "pattern":
        return f"{where} must be a 'key=value' string."
    if err.validator in ("maxLength", "maxItems", "maxProperties"):
        return f"{where} is too long (at most {err.validator_value})."
    if err.validator in ("minimum", "maximum"):
        bounds = err.schema.get("minimum"), err.schema.get("maximum")
        return f"{where} must be between {bounds[0]} and {bounds[1]}."
    return f"{where} is invalid ({err.validator})."


def _field(path: list[Any]) -> str:
    if not path:
        return "The proposal"
    head = f"Field {path[0]!r}"
    rest = "".join(f"[{p}]" if isinstance(p, int) else f"[{_quote(p)}]" for p in path[1:])
    return head + rest


def _normalise_overrides(overrides: dict[str, Any] | list[str]) -> dict[str, Any]:
    """Accept ``["model.n_layer=6", ...]`` as data: split at the first '=', parse the value as JSON."""
    if isinstance(overrides, dict):
        return overrides
    out: dict[str, Any] = {}
    for item in overrides:
        key, _, text = item.partition("=")
        key = key.strip()
        if key in out:
            raise _Refused("schema", f"The overrides set {_quote(key)} twice.")
        out[key] = _parse_value(text.strip())
    return out


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text, parse_constant=_no_constant)
    except _Refused:
        raise
    except (ValueError, RecursionError):
        return text  # a bare word: the string itself (rope, swiglu)


# --------------------------------------------------------------------------- (c) forbidden
def _check_forbidden(data: dict[str, Any], overrides: dict[str, Any]) -> None:
    for name in ("rationale", "expected_effect", "agent"):
        if _has_interpolation(data.get(name)):
            raise _Refused("forbidden", f"The {name} {_NEVER_RESOLVED}.")
    for key, value in overrides.items():
        reason = _key_problem(key)
        if reason:
            raise _Refused("forbidden", reason)
        if _has_interpolation(value):
            raise _Refused("forbidden", f"The value for {key} {_NEVER_RESOLVED}.")
        if value is None or not isinstance(value, (str, int, float, bool)):
            what = _kind(value)
            raise _Refused("forbidden", f"The value for {key} must be a single number, string or boolean, not {what}.")


def _key_problem(key: str) -> Optional[str]:
    if _has_interpolation(key):
        return f"An override key {_NEVER_RESOLVED}."
    shown = _quote(key)
    if key.startswith(("~", "+")):
        return f"The override key {shown} uses Hydra's ~/+/++ syntax; only plain keys of the search space may be set."
    if _BAD_KEY_CHARS.search(key):
        return f"The override key {shown} contains whitespace, a comma, '=' or a quote; keys are plain dotted names."
    if "hydra" in key.lower():
        return f"The override key {shown} touches Hydra's settings, which are not part of an experiment."
    if any(marker in key for marker in _INSTANTIATION):
        fields = "/".join(_INSTANTIATION[:3])
        return f"The override key {shown} names an instantiation field ({fields}), which no hypothesis may set."
    if not KEY_PATTERN.match(key):
        return f"The override key {shown} is not a plain dotted config key (like model.rope_base)."
    why = forbidden_reason(key)
    if why:
        return f"The override key {key} may not be changed: {why}."
    return None


def _has_interpolation(value: Any) -> bool:
    return isinstance(value, str) and any(marker in value for marker in _INTERPOLATION)


# --------------------------------------------------------------------------- (d) allowlist
def _check_allowlist(overrides: dict[str, Any], space: SearchSpace) -> dict[str, Scalar]:
    cast: dict[str, Scalar] = {}
    for key, value in overrides.items():
        param = space.parameters.get(key)
        if param is None:
            searchable = ", ".join(k for k, p in space.parameters.items() if p.type != "fixed")
            msg = f"The key {key} is not in search space {space.name} (searchable: {searchable})."
            raise _Refused("unknown_key", msg)
        try:
            cast[key] = param.cast(value)
        except TypeError as err:
            raise _Refused("type", f"The value for {key} {err}.") from None
        problem = param.check(cast[key])
        if problem:
            raise _Refused("range", f"{problem}.")
    return cast


# --------------------------------------------------------------------------- (e) dependency
def _inactive_reason(space: SearchSpace, key: str, merged: dict[str, Any]) -> str:
    for parent, allowed in space.parameters[key].depends_on.items():
        if not any(same_value(merged[parent], a) for a in allowed):
            want = repr(allowed[0]) if len(allowed) == 1 else f"one of {list(allowed)}"
            return f"{key} only applies when {parent} is {want}, and here it is {merged[parent]!r}."
        if parent in space.parameters and not space.is_active(parent, merged):
            return f"{key} only applies when {parent} applies, and {parent} is inactive here."
    return f"{key} does not apply here."


# --------------------------------------------------------------------------- text
def _quote(text: Any, limit: int = 60) -> str:
    """Untrusted text for a reason: quoted, escaped, clipped; never an interpolation."""
    if _has_interpolation(text):
        return "<text containing an interpolation>"
    return repr(_clip(str(text), limit))


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list"}.get(type(value), f"a {type(value).__name__}")
