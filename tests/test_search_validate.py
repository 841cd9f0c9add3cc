"""validate_hypothesis: the gate every proposal passes. Hostile proposals are refused with the
right code and a reason that names the key without repeating anything dangerous; valid ones
come back typed, with the space's pinned values, ready for Hydra."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autoresearch.config import ConfigError, ExperimentConfig, OptimConfig, compose, flatten, to_dict, to_experiment_config
from autoresearch.search import Hypothesis, Refusal, SearchSpace, config_fingerprint, validate_hypothesis

SECRET = "sk-test-DO-NOT-LEAK-5f3a9c"


@pytest.fixture
def base() -> dict:
    return flatten(to_dict(ExperimentConfig()))


@pytest.fixture(scope="module")
def spaces() -> dict[str, SearchSpace]:
    return {n: SearchSpace.load(n) for n in ("rope_ablation", "quickstart", "arch_basics", "lr_schedule")}


def prop(overrides, **extra) -> dict:
    return {"overrides": overrides, "rationale": "because", "expected_effect": "lower val_bpb", **extra}


def _pinned_space(tmp_path: Path) -> SearchSpace:
    path = tmp_path / "pinned.yaml"
    path.write_text(
        "name: pinned\nparameters:\n"
        "  model.block_size: {type: fixed, value: 32}\n"
        "  model.n_kv_head: {type: choice, values: [1, 2, 3, 4]}\n"
        "  model.n_head: {type: choice, values: [2, 3, 4]}\n"
        "constraints:\n  - \"model.n_embd % model.n_head == 0\"\n"
    )
    return SearchSpace.load(path)


# (label, space, raw proposal, expected code). The key-value forms an LLM might send to escape
# the search space, reach Hydra's grammar, or leak a secret through interpolation.
HOSTILE = [
    ("hydra run dir", "rope_ablation", prop({"hydra.run.dir": "/tmp/pwn"}), "forbidden"),
    ("hydra group", "rope_ablation", prop({"hydra/launcher": "joblib"}), "forbidden"),
    ("hydra anywhere in key", "rope_ablation", prop({"model.hydra_callbacks": 1}), "forbidden"),
    ("_target_ under a key", "rope_ablation", prop({"model._target_": "os.system"}), "forbidden"),
    ("bare _target_", "rope_ablation", prop({"_target_": "builtins.eval"}), "forbidden"),
    ("_recursive_", "rope_ablation", prop({"model._recursive_": False}), "forbidden"),
    ("delete a key", "rope_ablation", prop({"~model.rope_base": 1}), "forbidden"),
    ("add a key", "rope_ablation", prop({"+model.y": 1}), "forbidden"),
    ("force-add a key", "rope_ablation", prop({"++optim.lr": 0.01}), "forbidden"),
    ("env interpolation in a value", "rope_ablation", prop({"model.pos_encoding": "${oc.env:OPENAI_API_KEY}"}), "forbidden"),
    ("interpolation in a key", "rope_ablation", prop({"${oc.env:OPENAI_API_KEY}": 1}), "forbidden"),
    ("shell substitution in a value", "rope_ablation", prop({"model.pos_encoding": "$(cat ~/.ssh/id_rsa)"}), "forbidden"),
    ("interpolation in the rationale", "rope_ablation",
     {"overrides": {"optim.lr": 0.005}, "rationale": "${oc.env:OPENAI_API_KEY}", "expected_effect": "x"}, "forbidden"),
    ("interpolation in list form", "rope_ablation",
     prop(["model.pos_encoding=${oc.env:OPENAI_API_KEY}"]), "forbidden"),
    ("nested dict value", "rope_ablation", prop({"model": {"n_layer": 6}}), "forbidden"),
    ("list value", "rope_ablation", prop({"optim.lr": [0.001, 0.01]}), "forbidden"),
    ("list value in list form", "rope_ablation", prop(["optim.lr=[0.001, 0.01]"]), "forbidden"),
    ("null value", "rope_ablation", prop({"optim.lr": None}), "forbidden"),
    ("seed change", "rope_ablation", prop({"seed": 1}), "forbidden"),
    ("data.path change", "rope_ablation", prop({"data.path": "/etc/passwd"}), "forbidden"),
    ("budget change", "rope_ablation", prop({"trainer.budget.value": 600.0}), "forbidden"),
    ("key with '='", "rope_ablation", prop({"optim.lr=0.01": 0.01}), "forbidden"),
    ("key with newline", "rope_ablation", prop({"optim.lr\nhydra.run.dir": 0.01}), "forbidden"),
    ("key with comma", "rope_ablation", prop({"optim.lr,model.n_layer": 0.01}), "forbidden"),
    ("key with quote", "rope_ablation", prop({"optim.lr'": 0.01}), "forbidden"),
    ("config group override", "rope_ablation", prop({"model@_global_": "tiny"}), "forbidden"),
    ("unknown key", "rope_ablation", prop({"model.nonexistent": 1}), "unknown_key"),
    ("real key outside the space", "rope_ablation", prop({"model.dropout": 0.1}), "unknown_key"),
    ("config group name", "rope_ablation", prop({"model": "tiny"}), "unknown_key"),
    ("out of range", "rope_ablation", prop({"optim.lr": 0.5}), "range"),
    ("below a log-scale range", "rope_ablation", prop({"model.rope_base": 10.0}), "range"),
    ("not a choice", "rope_ablation", prop({"model.pos_encoding": "sinusoidal"}), "range"),
    ("number as a string", "rope_ablation", prop({"optim.lr": "0.01"}), "type"),
    ("int as a string", "arch_basics", prop({"model.n_layer": "3"}), "type"),
    ("bool for an int", "arch_basics", prop({"model.n_layer": True}), "type"),
    ("fraction for an int", "arch_basics", prop({"model.n_layer": 3.5}), "type"),
    ("int for a bool", "quickstart", prop({"model.qk_norm": 1}), "type"),
    ("inactive child", "rope_ablation", prop({"model.pos_encoding": "alibi", "model.rope_base": 50000.0}), "inactive"),
    ("inactive child of the base", "lr_schedule", prop({"optim.schedule": "cosine", "optim.cooldown_fraction": 0.3}), "inactive"),
    ("constraint violation", "arch_basics", prop({"model.n_head": 2, "model.n_kv_head": 4}), "constraint"),
    ("no-op", "rope_ablation", prop({"optim.lr": OptimConfig().lr, "model.pos_encoding": "rope"}), "duplicate"),
    ("no overrides", "rope_ablation", prop({}), "duplicate"),
    ("invalid JSON", "rope_ablation", '{"overrides": {"optim.lr": 0.01', "schema"),
    ("not an object", "rope_ablation", '[{"overrides": {}}]', "schema"),
    ("not even text", "rope_ablation", 42, "schema"),
    ("NaN", "rope_ablation", '{"overrides": {"optim.lr": NaN}, "rationale": "", "expected_effect": ""}', "schema"),
    ("duplicate JSON field", "rope_ablation",
     '{"overrides": {"optim.lr": 0.01}, "overrides": {"seed": 1}, "rationale": "", "expected_effect": ""}', "schema"),
    ("extra top-level field", "rope_ablation", prop({"optim.lr": 0.005}, command="rm -rf /"), "schema"),
    ("missing rationale", "rope_ablation", {"overrides": {"optim.lr": 0.005}, "expected_effect": "x"}, "schema"),
    ("parent not an int", "rope_ablation", prop({"optim.lr": 0.005}, parent="3"), "schema"),
    ("list item without '='", "rope_ablation", prop(["~model.rope_base"]), "schema"),
    ("too many overrides", "rope_ablation", prop({f"model.k{i}": i for i in range(100)}), "schema"),
    ("huge value", "rope_ablation", prop({"model.pos_encoding": "x" * 10_000}), "schema"),
]


@pytest.mark.parametrize("label,space_name,raw,code", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_proposal_is_refused_with_the_right_code(monkeypatch, spaces, base, label, space_name, raw, code):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    result = validate_hypothesis(raw, space=spaces[space_name], base=base, agent="llm")
    assert isinstance(result, Refusal), f"{label} was accepted: {result}"
    assert result.code == code, f"{label}: {result.code}: {result.reason}"
    assert result.agent == "llm" and result.raw == raw  # what was sent is kept, as data
    # One readable sentence that never carries a secret nor an interpolation someone could resolve.
    assert SECRET not in result.reason and "${" not in result.reason and "$(" not in result.reason
    assert "\n" not in result.reason and result.reason.endswith(".")
    assert len(result.reason) < 400


def test_at_least_twenty_hostile_cases():
    assert len(HOSTILE) >= 20


@pytest.mark.parametrize(
    "overrides,named",
    [
        ({"hydra.run.dir": "/tmp"}, "hydra.run.dir"),
        ({"model.nonexistent": 1}, "model.nonexistent"),
        ({"optim.lr": 0.5}, "optim.lr"),
        ({"optim.lr": "0.01"}, "optim.lr"),
        ({"model.pos_encoding": "alibi", "model.rope_base": 5e4}, "model.rope_base"),
        ({"seed": 7}, "seed"),
        ({"optim.lr": {"value": 1}}, "optim.lr"),
    ],
)
def test_the_reason_names_the_key(spaces, base, overrides, named):
    result = validate_hypothesis(prop(overrides), space=spaces["rope_ablation"], base=base, agent="llm")
    assert isinstance(result, Refusal) and named in result.reason


def test_interpolated_value_is_described_not_echoed(spaces, base):
    result = validate_hypothesis(
        prop({"model.pos_encoding": "${oc.env:OPENAI_API_KEY}"}), space=spaces["rope_ablation"], base=base, agent="llm"
    )
    assert isinstance(result, Refusal)
    assert "model.pos_encoding" in result.reason and "interpolation" in result.reason
    assert "OPENAI_API_KEY" not in result.reason and "oc.env" not in result.reason


def test_inactive_reason_says_what_would_activate_it(spaces, base):
    result = validate_hypothesis(
        prop({"model.pos_encoding": "alibi", "model.rope_base": 5e4}), space=spaces["rope_ablation"], base=base, agent="x"
    )
    assert result.reason == "model.rope_base only applies when model.pos_encoding is 'rope', and here it is 'alibi'."


def test_duplicate_names_the_earlier_run(spaces, base):
    asked: list[str] = []

    def seen(fp: str):
        asked.append(fp)
        return "trial 12 of campaign rope_ablation"

    result = validate_hypothesis(prop({"optim.lr": 0.005}), space=spaces["rope_ablation"], base=base, agent="x", seen=seen)
    assert isinstance(result, Refusal) and result.code == "duplicate"
    assert "trial 12 of campaign rope_ablation" in result.reason
    assert asked == [config_fingerprint({**base, "optim.lr": 0.005})]


# --------------------------------------------------------------------------- accepted
def test_valid_dict_proposal_comes_back_typed(spaces, base):
    result = validate_hypothesis(
        prop({"model.pos_encoding": "rope", "model.rope_base": 50000, "optim.lr": 0.004}, parent=3),
        space=spaces["rope_ablation"], base=base, agent="playbook", seen=lambda fp: None,
    )
    assert isinstance(result, Hypothesis)
    assert base["model.pos_encoding"] == "rope"  # the baseline's own value: dropped (canonical form)
    assert result.overrides == {"model.rope_base": 50000.0, "optim.lr": 0.004}
    assert isinstance(result.overrides["model.rope_base"], float)
    assert (result.agent, result.parent, result.rationale) == ("playbook", 3, "because")


def test_values_equal_to_the_baseline_are_dropped_so_only_real_changes_are_listed(spaces, base):
    """Ax names every parameter of its points; a report or an ablation must see only what changed."""
    space = spaces["quickstart"]
    full = {"optim.lr": 0.002, "model.pos_encoding": base["model.pos_encoding"], "model.norm": base["model.norm"],
            "model.activation": base["model.activation"], "model.qk_norm": not base["model.qk_norm"]}
    result = validate_hypothesis(prop(full), space=space, base=base, agent="bayes")
    assert isinstance(result, Hypothesis)
    assert result.overrides == {"optim.lr": 0.002, "model.qk_norm": not base["model.qk_norm"]}
    assert config_fingerprint({**base, **result.overrides}) == config_fingerprint({**base, **full})
    again = validate_hypothesis(result, space=space, base=base, agent="bayes")
    assert again.overrides == result.overrides  # canonical: validating twice changes nothing


def test_llm_answer_with_chatter_and_a_fenced_block(spaces, base):
    answer = (
        "Sure! Based on the history, deeper models look promising.\n\n```json\n"
        + json.dumps(prop({"model.n_layer": 3.0, "model.activation": "swiglu"}, agent="bayes"))
        + "\n```\nLet me know how it goes."
    )
    result = validate_hypothesis(answer, space=spaces["arch_basics"], base=base, agent="llm")
    assert isinstance(result, Hypothesis)
    assert result.overrides == {"model.n_layer": 3, "model.activation": "swiglu"}
    assert type(result.overrides["model.n_layer"]) is int
    assert result.agent == "llm"  # the caller says who proposed, not the text


def test_bare_json_object_inside_prose(spaces, base):
    text = "My proposal: " + json.dumps(prop({"model.qk_norm": False})) + " (untested)"
    result = validate_hypothesis(text, space=spaces["quickstart"], base=base, agent="llm")
    assert isinstance(result, Hypothesis) and result.overrides == {"model.qk_norm": False}


def test_list_of_key_value_strings_is_parsed_as_data(spaces, base):
    raw = prop(["model.n_layer=2", "model.activation=gelu", "model.qk_norm=false", "model.norm=layer"])
    result = validate_hypothesis(raw, space=spaces["arch_basics"], base=base, agent="llm")
    assert isinstance(result, Hypothesis)
    assert result.overrides == {"model.n_layer": 2, "model.activation": "gelu", "model.qk_norm": False, "model.norm": "layer"}


def test_log_scale_bounds_are_inclusive_and_a_hypothesis_object_is_accepted(spaces, base):
    h = Hypothesis(overrides={"model.rope_base": 1e6}, rationale="long range", expected_effect="?", agent="bayes")
    result = validate_hypothesis(h, space=spaces["rope_ablation"], base=base, agent="bayes")
    assert isinstance(result, Hypothesis) and result.overrides == {"model.rope_base": 1e6}


def test_fixed_values_are_pinned_and_the_fingerprint_matches_the_hypothesis(tmp_path, base):
    space = _pinned_space(tmp_path)
    asked: list[str] = []
    result = validate_hypothesis(
        prop({"model.n_kv_head": 2}), space=space, base=base, agent="x", seen=lambda fp: asked.append(fp)
    )
    assert isinstance(result, Hypothesis)
    assert result.overrides == {"model.n_kv_head": 2, "model.block_size": 32}
    assert asked == [config_fingerprint({**base, **result.overrides})]
    assert "model.block_size=32" in result.override_strings()
    changed = validate_hypothesis(prop({"model.block_size": 128}), space=space, base=base, agent="x")
    assert isinstance(changed, Refusal) and changed.code == "range" and "fixed at 32" in changed.reason
    same = validate_hypothesis(prop({"model.block_size": 32, "model.n_kv_head": 1}), space=space, base=base, agent="x")
    assert isinstance(same, Hypothesis)


def test_constraint_on_the_merged_config(tmp_path, base):
    space = _pinned_space(tmp_path)  # n_embd 128 is not divisible by 3 heads
    result = validate_hypothesis(prop({"model.n_head": 3, "model.n_kv_head": 1}), space=space, base=base, agent="x")
    assert isinstance(result, Refusal) and result.code == "constraint"
    assert "model.n_embd % model.n_head == 0" in result.reason and "model.n_head=3" in result.reason


# --------------------------------------------------------------------------- Hydra compose
def _compose(strings: list[str]) -> ExperimentConfig:
    return to_experiment_config(compose(strings))


def test_accepted_overrides_compose_with_hydra(spaces):
    base = flatten(to_dict(_compose([])))
    result = validate_hypothesis(
        prop({"model.pos_encoding": "alibi", "optim.lr": 0.0125}),
        space=spaces["rope_ablation"], base=base, agent="x", compose=_compose,
    )
    assert isinstance(result, Hypothesis)
    cfg = _compose(result.override_strings())
    assert (cfg.model.pos_encoding, cfg.optim.lr) == ("alibi", 0.0125)
    assert config_fingerprint(flatten(to_dict(cfg))) == config_fingerprint({**base, **result.overrides})


def test_a_config_hydra_cannot_build_is_refused_as_compose(tmp_path, base):
    # The space forgot n_head % n_kv_head == 0; the typed config catches it at compose time.
    space = _pinned_space(tmp_path)
    result = validate_hypothesis(prop({"model.n_kv_head": 3}), space=space, base=base, agent="x", compose=_compose)
    assert isinstance(result, Refusal) and result.code == "compose"
    assert "n_kv_head" in result.reason
    with pytest.raises(ConfigError):
        _compose(["model.n_kv_head=3"])
