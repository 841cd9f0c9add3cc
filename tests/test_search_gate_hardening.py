"""The gate never raises, values are canonical once, budget keys stay closed (issue 14, items 2, 3, 9).

Each test here was written against an answer that, before, ended a campaign, passed the
duplicate check or ran a value outside the declared bounds.
"""

from __future__ import annotations

import json

import pytest

from autoresearch.config import ExperimentConfig, compose, flatten, to_dict
from autoresearch.search import (
    FORBIDDEN_KEYS,
    Hypothesis,
    Refusal,
    SearchSpace,
    SearchSpaceError,
    config_fingerprint,
    validate_hypothesis,
)
from autoresearch.search.canonical import canonical_value, clean_text, same_value
from autoresearch.search.keys import BUDGET_KEYS, config_keys, forbidden_reason
from autoresearch.store import KnowledgeStore


@pytest.fixture(scope="module")
def base() -> dict:
    return flatten(to_dict(ExperimentConfig()))


@pytest.fixture(scope="module")
def lr_space() -> SearchSpace:
    return SearchSpace.load("lr_schedule")  # optim.lr in [0.0005, 0.02] (log), weight_decay in [0, 0.3]


@pytest.fixture
def db(tmp_path):
    store = KnowledgeStore(tmp_path / "k.sqlite")
    yield store, store.upsert_campaign("c", {}, "lr_schedule", str(tmp_path))
    store.close()


def answer(overrides, **extra) -> str:
    """An LLM's answer as text (json.dumps writes a lone surrogate as a \\ud800 escape)."""
    return json.dumps({"overrides": overrides, "rationale": "r", "expected_effect": "e", **extra})


def check(raw, space, base, **kw):
    return validate_hypothesis(raw, space=space, base=base, agent="t", **kw)


def record(store: KnowledgeStore, campaign_id: int, result: Hypothesis | Refusal) -> int:
    """What the campaign does with the gate's answer."""
    if isinstance(result, Hypothesis):
        return store.add_hypothesis(campaign_id, result.to_dict(), status="proposed")
    return store.add_hypothesis(campaign_id, result.raw, status="refused", refusal_code=result.code,
                                refusal_reason=result.reason)


# --------------------------------------------------------------------------- item 2
def test_a_lone_surrogate_in_the_rationale_is_replaced_and_the_store_keeps_it(lr_space, base, db):
    text = answer({"optim.lr": 0.004}, rationale="warmer \ud800 start\r\nsecond line\x1b[31m")
    result = check(text, lr_space, base)
    assert isinstance(result, Hypothesis)
    assert result.rationale == "warmer \ufffd start\nsecond line\ufffd[31m"
    store, cid = db
    row = store.hypothesis(record(store, cid, result))
    assert row.rationale == result.rationale


def test_a_parent_too_large_for_sqlite_is_refused_and_recorded(lr_space, base, db):
    result = check(answer({"optim.lr": 0.004}, parent=2**70), lr_space, base)
    assert isinstance(result, Refusal) and result.code == "schema"
    assert "parent" in result.reason
    store, cid = db
    assert store.hypothesis(record(store, cid, result)).parent is None


def test_a_float_parent_is_an_integer_and_a_negative_one_is_refused(lr_space, base):
    assert check(answer({"optim.lr": 0.004}, parent=7.0), lr_space, base).parent == 7
    assert check(answer({"optim.lr": 0.004}, parent=-1), lr_space, base).code == "schema"


@pytest.mark.parametrize("key", ["optim.lr", "optim.weight_decay"])
def test_an_integer_of_hundreds_of_digits_is_refused_as_a_type(lr_space, base, db, key):
    result = check(answer({key: 10**400}), lr_space, base)
    assert isinstance(result, Refusal) and result.code == "type"
    store, cid = db
    record(store, cid, result)


def test_an_in_process_agent_sending_anything_gets_a_refusal_the_store_can_keep(lr_space, base, db):
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    raw = {"overrides": {"optim.lr": 0.004}, "rationale": deep, "expected_effect": "e", "parent": 2**80,
           "\ud800": float("nan"), "x": object()}
    result = check(raw, lr_space, base)
    assert isinstance(result, Refusal)
    store, cid = db
    row = store.hypothesis(record(store, cid, result))
    assert row.status == "refused" and row.parent is None


def test_a_hypothesis_object_too_deep_to_copy_is_refused(lr_space, base, db):
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    result = check(Hypothesis(overrides={"optim.lr": deep}, rationale="r", expected_effect="e"), lr_space, base)
    assert isinstance(result, Refusal)
    store, cid = db
    record(store, cid, result)


def test_a_check_that_fails_inside_becomes_a_refusal(lr_space, base):
    def broken_seen(fingerprint: str):
        raise RuntimeError("the store went away")

    result = check(answer({"optim.lr": 0.004}), lr_space, base, seen=broken_seen)
    assert isinstance(result, Refusal) and result.code == "invalid"


# --------------------------------------------------------------------------- item 3
def _seen_after(space: SearchSpace, base: dict, overrides: dict):
    earlier = check(answer(overrides), space, base)
    assert isinstance(earlier, Hypothesis)
    done = {config_fingerprint({**base, **earlier.overrides}): "trial 1"}
    return done.get


def test_minus_zero_is_a_repeat_of_zero(lr_space, base):
    seen = _seen_after(lr_space, base, {"optim.weight_decay": 0.0})
    result = check(answer({"optim.weight_decay": -0.0}), lr_space, base, seen=seen)
    assert isinstance(result, Refusal) and result.code == "duplicate"
    assert config_fingerprint({"k": -0.0}) == config_fingerprint({"k": 0.0})


def test_a_float_differing_in_its_tenth_digit_is_a_repeat(lr_space, base):
    seen = _seen_after(lr_space, base, {"optim.lr": 0.003})
    result = check(answer({"optim.lr": 0.0030000001}), lr_space, base, seen=seen)
    assert isinstance(result, Refusal) and result.code == "duplicate"


def test_the_value_that_runs_is_the_canonical_one(lr_space, base):
    result = check(answer({"optim.lr": 0.0030000001, "optim.weight_decay": -0.0}), lr_space, base)
    assert result.overrides["optim.lr"] == 0.003
    assert "optim.weight_decay=0.0" in result.override_strings()


def test_no_value_outside_the_bounds_ever_runs(lr_space, base):
    lo, hi = lr_space.parameters["optim.lr"].bounds
    inside_after_rounding = check(answer({"optim.lr": lo - 5e-13}), lr_space, base)
    assert inside_after_rounding.overrides["optim.lr"] == lo  # rounded onto the bound, then checked
    outside = check(answer({"optim.lr": lo - 9e-10}), lr_space, base)  # 0.0004999991: outside at 6 digits
    assert isinstance(outside, Refusal) and outside.code == "range"
    above = check(answer({"optim.weight_decay": 0.300001}), lr_space, base)
    assert isinstance(above, Refusal) and above.code == "range"


def test_canonical_rules():
    assert canonical_value(-0.0) == 0.0 and str(canonical_value(-0.0)) == "0.0"
    assert canonical_value(0.1 + 0.2) == 0.3
    assert canonical_value(123456789.0) == 123457000.0
    assert canonical_value(123456789) == 123456789  # integers are exact
    assert same_value(3, 3.0) and not same_value(True, 1)
    assert clean_text("a\rb\u0000c\td") == "a\nb\ufffdc\td"


def test_fingerprints_of_canonical_configs_did_not_change():
    """Stores written before canonicalisation keep matching: already canonical values hash as before."""
    import hashlib

    flat = {"optim.lr": 0.003, "model.n_layer": 4, "model.pos_encoding": "rope", "model.qk_norm": True}
    old = hashlib.sha256(json.dumps(dict(sorted(flat.items())), sort_keys=True, default=str).encode()).hexdigest()[:16]
    assert config_fingerprint(flat) == old


# --------------------------------------------------------------------------- item 9
def test_budget_keys_are_forbidden_and_exist():
    for key in BUDGET_KEYS:
        assert forbidden_reason(key), key
        assert key in config_keys() or any(k.startswith(key + ".") for k in config_keys()), key
    assert "trainer.untimed_warmup_steps" in FORBIDDEN_KEYS


def test_a_space_listing_warmup_steps_is_refused_at_load(tmp_path):
    path = tmp_path / "sneaky.yaml"
    path.write_text("name: sneaky\nparameters:\n  trainer.untimed_warmup_steps: {type: range, bounds: [1, 500]}\n"
                    "  optim.lr: {type: range, bounds: [0.001, 0.01]}\n")
    with pytest.raises(SearchSpaceError) as info:
        SearchSpace.load(path)
    (problem,) = info.value.problems
    assert "sneaky.yaml" in problem and "parameters.trainer.untimed_warmup_steps" in problem
    assert "outside the seconds budget" in problem


@pytest.mark.parametrize("key", ["trainer.untimed_warmup_steps", "trainer.eval_points", "trainer.threads"])
def test_an_agent_may_not_set_a_budget_key(lr_space, base, key):
    result = check(answer({key: 50}), lr_space, base)
    assert isinstance(result, Refusal) and result.code == "forbidden" and key in result.reason


def test_every_shipped_space_still_loads():
    from autoresearch.config import SEARCH_SPACE_DIR

    for path in SEARCH_SPACE_DIR.glob("*.yaml"):
        SearchSpace.load(path)


# --------------------------------------------------------------------------- graphlib
def test_a_three_step_cycle_is_named_in_order(tmp_path):
    path = tmp_path / "loop.yaml"
    path.write_text(
        "name: loop\nparameters:\n"
        "  model.norm: {type: choice, values: [rms, layer], depends_on: {model.activation: [gelu]}}\n"
        "  model.activation: {type: choice, values: [gelu, relu2], depends_on: {model.pos_encoding: [rope]}}\n"
        "  model.pos_encoding: {type: choice, values: [rope, none], depends_on: {model.norm: [rms]}}\n"
    )
    with pytest.raises(SearchSpaceError, match="dependency cycle") as info:
        SearchSpace.load(path)
    text = str(info.value)
    assert all(k in text for k in ("model.norm", "model.activation", "model.pos_encoding"))


def test_topological_order_keeps_a_parents_first_file_order_and_moves_a_child_after_its_parent(tmp_path):
    path = tmp_path / "order.yaml"
    path.write_text(
        "name: order\nparameters:\n"
        "  model.rope_base: {type: range, bounds: [1000.0, 100000.0], depends_on: {model.pos_encoding: [rope]}}\n"
        "  optim.lr: {type: range, bounds: [0.001, 0.01]}\n"
        "  model.pos_encoding: {type: choice, values: [rope, none]}\n"
    )
    space = SearchSpace.load(path)
    assert space.topological_order() == ["optim.lr", "model.pos_encoding", "model.rope_base"]
    assert SearchSpace.load("rope_ablation").topological_order() == list(SearchSpace.load("rope_ablation").parameters)


def test_accepted_canonical_values_compose(lr_space, base):
    result = check(answer({"optim.lr": 0.0030000001}), lr_space, base)
    assert compose(result.override_strings()).optim.lr == 0.003
