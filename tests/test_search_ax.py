"""The Ax bridge: a search space becomes Ax parameters (hierarchical where Ax can say it), Ax's
suggestions come back as overrides the gate accepts, and other agents' trials attach to Ax."""

from __future__ import annotations

import logging
import random
import warnings

import pytest

from autoresearch.config import ExperimentConfig, flatten, to_dict
from autoresearch.search import (
    Hypothesis,
    Refusal,
    SearchSpace,
    ax_name,
    ax_parameters,
    from_ax,
    to_ax,
    validate_hypothesis,
)

SHIPPED = ["rope_ablation", "arch_basics", "lr_schedule", "quickstart"]


@pytest.fixture
def base() -> dict:
    return flatten(to_dict(ExperimentConfig()))


def _by_name(params) -> dict:
    return {p.name: p for p in params}


def test_importing_the_search_package_does_not_import_ax():
    import subprocess
    import sys

    code = "import sys, autoresearch.search; print('ax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_rope_base_is_a_hierarchical_child_of_pos_encoding(base):
    from ax import ChoiceParameterConfig, RangeParameterConfig

    params = _by_name(ax_parameters(SearchSpace.load("rope_ablation"), base))
    assert set(params) == {"model__pos_encoding", "model__rope_base", "optim__lr"}
    pos = params["model__pos_encoding"]
    assert isinstance(pos, ChoiceParameterConfig)
    assert pos.values == ["rope", "learned", "alibi", "none"] and pos.is_ordered is False
    assert pos.dependent_parameters == {"rope": ["model__rope_base"]}
    rope = params["model__rope_base"]
    assert isinstance(rope, RangeParameterConfig)
    assert (rope.bounds, rope.parameter_type, rope.scaling) == ((1000.0, 1e6), "float", "log")


def test_a_child_switched_on_by_several_values_is_an_ordinary_parameter(base):
    params = _by_name(ax_parameters(SearchSpace.load("lr_schedule"), base))
    # cooldown needs schedule=wsd (one value: hierarchical); min_lr_ratio needs one of three
    # schedules, which Ax's tree cannot say: it stays top-level and is dropped while inactive.
    assert params["optim__schedule"].dependent_parameters == {"wsd": ["optim__cooldown_fraction"]}
    assert "optim__min_lr_ratio" in params
    space = SearchSpace.load("lr_schedule")
    suggestion = {
        "optim__lr": 0.004, "optim__schedule": "constant", "optim__warmup_fraction": 0.05,
        "optim__min_lr_ratio": 0.1, "optim__weight_decay": 0.1, "optim__beta2": 0.95,
    }
    overrides = from_ax(suggestion, space, base)
    assert "optim.min_lr_ratio" not in overrides and overrides["optim.schedule"] == "constant"
    back = to_ax(overrides, space, base)
    assert set(back) == set(suggestion) and back["optim__min_lr_ratio"] == base["optim.min_lr_ratio"]


def test_fixed_and_never_active_parameters_are_not_given_to_ax(tmp_path, base):
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: s\nparameters:\n"
        "  model.block_size: {type: fixed, value: 64}\n"
        "  model.rope_base: {type: range, bounds: [1000, 100000], log_scale: true,"
        " depends_on: {model.pos_encoding: [rope]}}\n"
        "  data.bpe_vocab_size: {type: range, bounds: [300, 2000], depends_on: {data.tokenizer: [bpe]}}\n"
    )
    space = SearchSpace.load(path)
    # pos_encoding is outside the space (rope in the base): rope_base is simply always active;
    # the base tokenizer is bytes, so bpe_vocab_size can never matter in this campaign.
    assert [p.name for p in ax_parameters(space, base)] == ["model__rope_base"]
    assert to_ax({}, space, base) == {"model__rope_base": 10000.0}
    assert from_ax({"model__rope_base": 20000.0}, space, base) == {"model.rope_base": 20000.0}


def test_names_map_back_and_values_take_the_config_types(base):
    space = SearchSpace.load("quickstart")
    assert ax_name("model.n_layer") == "model__n_layer"
    overrides = from_ax(
        {"optim__lr": 1, "model__qk_norm": False, "model__activation": "gelu", "model__pos_encoding": "alibi"},
        space, base,
    )
    assert overrides == {"optim.lr": 1.0, "model.activation": "gelu", "model.pos_encoding": "alibi",
                         "model.qk_norm": False}
    assert type(overrides["optim.lr"]) is float
    assert from_ax({"model__n_layer": 3.0}, SearchSpace.load("arch_basics"), base) == {"model.n_layer": 3}
    assert type(from_ax({"model__n_layer": 3.0}, SearchSpace.load("arch_basics"), base)["model.n_layer"]) is int
    with pytest.raises(ValueError, match="model__dropout"):
        from_ax({"model__dropout": 0.1}, space, base)
    with pytest.raises(ValueError, match="model.dropout"):
        to_ax({"model.dropout": 0.1}, space, base)


@pytest.mark.parametrize("name", SHIPPED)
def test_round_trip_of_random_points(name, base):
    space = SearchSpace.load(name)
    rng = random.Random(3)
    for _ in range(20):
        point = space.sample(rng, base)
        tunable = {k: v for k, v in point.items() if space.parameters[k].type != "fixed"}
        assert from_ax(to_ax(tunable, space, base), space, base) == tunable


def test_ax_client_suggests_accepted_hypotheses_and_learns_from_other_agents(base):
    """A real Ax experiment: the baseline and an LLM's trial attached, Sobol suggestions validated."""
    from ax import Client

    logging.getLogger("ax").setLevel(logging.WARNING)
    space = SearchSpace.load("rope_ablation")
    client = Client(random_seed=0)
    client.configure_experiment(parameters=ax_parameters(space, base))
    client.configure_optimization(objective="-val_bpb")

    baseline = client.attach_baseline(to_ax({}, space, base))
    client.complete_trial(baseline, raw_data={"val_bpb": 2.10})
    llm = validate_hypothesis(
        {"overrides": {"model.pos_encoding": "alibi", "optim.lr": 0.006}, "rationale": "r", "expected_effect": "e"},
        space=space, base=base, agent="llm",
    )
    assert isinstance(llm, Hypothesis)
    attached = client.attach_trial(to_ax(llm.overrides, space, base))  # inactive rope_base left out
    client.complete_trial(attached, raw_data={"val_bpb": 2.05})

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trials = client.get_next_trials(max_trials=4)
    for index, params in trials.items():
        overrides = from_ax(params, space, base)
        assert ("model.rope_base" in overrides) == (overrides["model.pos_encoding"] == "rope")
        result = validate_hypothesis(
            {"overrides": overrides, "rationale": "Sobol", "expected_effect": "explore"}, space=space, base=base, agent="bayes"
        )
        assert not isinstance(result, Refusal), result.reason
        client.complete_trial(index, raw_data={"val_bpb": 2.0 + index / 100})
    assert (baseline, attached, sorted(trials)) == (0, 1, [2, 3, 4, 5])
