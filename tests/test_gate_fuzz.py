"""Property: whatever an agent returns ends as a Refusal or a valid Hypothesis, and the store
keeps either (issue 14, "What it must show").

Random answers, as Python values, JSON text (with chatter, fences or neither) and raw bytes:
any unicode including lone surrogates and control characters, integers of hundreds of digits,
tiny and huge floats, NaN, deep nesting, long strings, wrong types, and hypothesis-shaped
objects built from the space's real keys so that some answers are valid. Each result goes to a
real ``KnowledgeStore`` on SQLite the way the campaign records it.

The library is imported as ``hp`` because our own ``Hypothesis`` class shares its name.
"""

from __future__ import annotations

import json
import math

import hypothesis as hp
import pytest
from hypothesis import strategies as st

from autoresearch.config import ExperimentConfig, flatten, to_dict
from autoresearch.search import Hypothesis, Refusal, SearchSpace, config_fingerprint, validate_hypothesis
from autoresearch.search.canonical import INT_MAX, INT_MIN, has_unsafe_chars
from autoresearch.store import KnowledgeStore

CODES = {"schema", "forbidden", "unknown_key", "type", "range", "inactive", "constraint", "duplicate", "compose",
         "invalid"}

SPACE = SearchSpace.load("rope_ablation")  # a range, a log-range child that depends on a choice
BASE = flatten(to_dict(ExperimentConfig()))

# Any code point, plus the ones that broke sinks drawn often: lone surrogates, every C0/C1
# control (NUL, ESC, \r, DEL, ...), bidi overrides, line separators, quotes and interpolation.
HOSTILE_CHARS = ([chr(c) for c in range(0x00, 0x20)] + [chr(c) for c in range(0x7F, 0xA0)]
                 + ["\ud800", "\udfff", "\udc00", "\u202e", "\u2028", "\ufeff", "$", "{", "}", '"', "\\"])
characters = st.one_of(st.sampled_from(HOSTILE_CHARS), st.characters(exclude_categories=()))
text = st.text(characters, max_size=30)
long_text = st.integers(0, 120_000).map(lambda n: "x" * n)
numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(),  # includes nan, inf, -0.0, subnormals
    st.sampled_from([-0.0, 5e-324, 1e308, 2**63, 2**63 - 1, -(2**63) - 1, 1e-300, 0.0030000001]),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, text)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
                           max_leaves=12)


def nested(depth: int) -> list:
    out: list = []
    for _ in range(depth):
        out = [out]
    return out


deep = st.integers(1, 1500).map(nested)  # past Python's recursion limit (1000) for json and repr


def key_value(key: str, value) -> str:
    try:
        return f"{key}={value}"
    except (ValueError, RecursionError):  # a deep list, an int past str()'s digit limit
        return f"{key}=[[[["
keys = st.one_of(st.sampled_from(sorted(SPACE.parameters)), st.sampled_from(["seed", "trainer.untimed_warmup_steps",
                 "+model.n_layers", "hydra.run.dir", "model._target_", "optim.lr=1", "${oc.env:HOME}"]), text)
values = st.one_of(
    st.sampled_from(["rope", "alibi", "none", "learned", 0.004, 0.0005, 0.02, 50000.0, 1000, True]),
    numbers, text, st.none(), deep, st.lists(scalars, max_size=3),
)
shaped = st.fixed_dictionaries(
    {
        "overrides": st.one_of(st.dictionaries(keys, values, max_size=4),
                               st.lists(st.builds(key_value, keys, values), max_size=4)),
        "rationale": st.one_of(text, long_text, json_values),
        "expected_effect": st.one_of(text, numbers),
    },
    optional={"parent": st.one_of(numbers, st.none(), text), "agent": text, "extra": json_values},
)

plausible_values = {
    "model.pos_encoding": st.sampled_from(["rope", "alibi", "learned", "none"]),
    "model.rope_base": st.floats(1000.0, 1_000_000.0) | st.integers(1000, 1_000_000),
    "optim.lr": st.floats(0.0004, 0.03),
}
plausible = st.fixed_dictionaries(
    {
        "overrides": st.sampled_from(sorted(plausible_values)).flatmap(
            lambda k: st.fixed_dictionaries({k: plausible_values[k]})),
        "rationale": text,
        "expected_effect": text,
    },
    optional={"parent": st.integers(-5, 2**64)},
)


def as_text(data: dict, ascii_only: bool, wrap: int) -> str:
    try:
        body = json.dumps(data, ensure_ascii=ascii_only)
    except (ValueError, TypeError, RecursionError):  # an int past str()'s digit limit, a deep list
        body = repr(type(data))
    return [body, f"Sure! Here you go:\n```json\n{body}\n```\nHope that helps.", f"I think {body} is best"][wrap]


answers = st.one_of(
    plausible,
    st.builds(lambda d, a, w: as_text(d, a, w), plausible, st.booleans(), st.integers(0, 2)),
    shaped,
    json_values,
    deep,
    st.builds(as_text, shaped, st.booleans(), st.integers(0, 2)),
    text,
    st.binary(max_size=200),
    st.integers(1, 1500).map(lambda n: '{"overrides": ' + "[" * n + "]" * n + "}"),
    st.integers(1, 1500).map(lambda n: '{"a":' * n + "1" + "}" * n),
)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = KnowledgeStore(tmp_path_factory.mktemp("fuzz") / "knowledge.sqlite")
    yield s, s.upsert_campaign("fuzz", {}, SPACE.name, "outputs/fuzz")
    s.close()


def _json_safe(value) -> bool:
    json.dumps(value, allow_nan=False)
    return True


@hp.settings(max_examples=200, deadline=None, suppress_health_check=[hp.HealthCheck.too_slow,
                                                                     hp.HealthCheck.data_too_large])
@hp.given(raw=answers)
def test_any_answer_ends_as_a_refusal_or_a_hypothesis_the_store_keeps(store, raw):
    db, campaign_id = store
    seen = {config_fingerprint(BASE): "the baseline"}.get
    result = validate_hypothesis(raw, space=SPACE, base=BASE, agent="fuzz", seen=seen)
    if isinstance(result, Hypothesis):
        for key, value in result.overrides.items():
            param = SPACE.parameters[key]
            assert param.check(value) is None
            if isinstance(value, int) and not isinstance(value, bool):
                assert INT_MIN <= value <= INT_MAX
            if isinstance(value, float):
                assert math.isfinite(value) and str(value) != "-0.0"
        assert not has_unsafe_chars(result.rationale) and not has_unsafe_chars(result.expected_effect)
        assert result.parent is None or 0 <= result.parent <= INT_MAX
        row = db.hypothesis(db.add_hypothesis(campaign_id, result.to_dict(), status="proposed",
                                              fingerprint=config_fingerprint({**BASE, **result.overrides})))
        assert row.rationale == result.rationale and row.overrides == result.overrides
    else:
        assert isinstance(result, Refusal)
        assert result.code in CODES
        result.reason.encode("utf-8")  # no lone surrogate: it is shown to people and stored
        assert _json_safe(result.raw)
        row = db.hypothesis(db.add_hypothesis(campaign_id, result.raw, status="refused", refusal_code=result.code,
                                              refusal_reason=result.reason))
        assert row.refusal_code == result.code


def test_the_fuzz_reaches_both_outcomes():
    """The property above is only worth something if random answers do get through sometimes."""
    outcomes = set()

    @hp.settings(max_examples=100, deadline=None, database=None, derandomize=True,
                 suppress_health_check=list(hp.HealthCheck))
    @hp.given(raw=st.one_of(plausible, shaped))
    def collect(raw):
        outcomes.add(type(validate_hypothesis(raw, space=SPACE, base=BASE, agent="fuzz")).__name__)

    collect()
    assert outcomes == {"Hypothesis", "Refusal"}
