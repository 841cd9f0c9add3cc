"""Search spaces: the shipped files load and describe legal configs; broken files are reported
with file and JSON path; the constraint interpreter reads config keys and nothing else."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import pytest

from autoresearch.config import SEARCH_SPACE_DIR, ExperimentConfig, flatten, to_dict, to_experiment_config
from autoresearch.search import Constraint, ConstraintSyntaxError, SearchSpace, SearchSpaceError

SHIPPED = sorted(p.stem for p in SEARCH_SPACE_DIR.glob("*.yaml"))


@pytest.fixture
def base() -> dict:
    return flatten(to_dict(ExperimentConfig()))


def _nested(flat: dict) -> dict:
    out: dict = {}
    for key, value in flat.items():
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def _write(tmp_path: Path, text: str, name: str = "broken.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_four_required_spaces_are_shipped():
    assert {"rope_ablation", "arch_basics", "lr_schedule", "quickstart"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_space_loads_and_every_sample_is_a_legal_config(name, base):
    space = SearchSpace.load(name)
    assert space.name == name
    assert space.path is not None and space.path.name == f"{name}.yaml"
    assert space.parameters and all(p.description for p in space.parameters.values())
    rng = random.Random(0)
    for _ in range(25):
        point = space.sample(rng, base)
        merged = {**base, **point}
        assert not space.check_constraints(merged)
        assert all(space.is_active(k, merged) for k in point)
        # The typed config accepts the point: every value is legal for the model/trainer/optimiser.
        to_experiment_config(_nested(merged))


def test_load_accepts_a_bare_name_a_file_name_and_a_path(tmp_path):
    by_name = SearchSpace.load("rope_ablation")
    assert SearchSpace.load("rope_ablation.yaml") == by_name
    copy = _write(tmp_path, (SEARCH_SPACE_DIR / "rope_ablation.yaml").read_text(), "copy.yaml")
    from_path = SearchSpace.load(copy)
    assert from_path.parameters == by_name.parameters and from_path.path == copy


def test_a_missing_space_names_the_file_and_lists_the_shipped_ones():
    with pytest.raises(SearchSpaceError) as err:
        SearchSpace.load("no_such_space")
    assert "no_such_space.yaml" in str(err.value) and "rope_ablation" in str(err.value)


def test_rope_ablation_structure(base):
    space = SearchSpace.load("rope_ablation")
    assert list(space.parameters) == ["model.pos_encoding", "model.rope_base", "optim.lr"]
    rope = space.parameters["model.rope_base"]
    assert (rope.type, rope.value_type, rope.bounds, rope.log_scale) == ("range", "float", (1000.0, 1e6), True)
    assert rope.depends_on == {"model.pos_encoding": ("rope",)}
    assert space.parameters["model.pos_encoding"].ordered is False
    assert space.dependency_edges() == [("model.pos_encoding", "model.rope_base")]
    assert space.is_active("model.rope_base", {**base, "model.pos_encoding": "rope"})
    assert not space.is_active("model.rope_base", {**base, "model.pos_encoding": "alibi"})
    assert space.is_active("optim.lr", base)
    assert space.defaults(base) == {"model.pos_encoding": "rope", "model.rope_base": 10000.0, "optim.lr": base["optim.lr"]}


def test_sampling_is_reproducible_and_leaves_out_inactive_children(base):
    space = SearchSpace.load("rope_ablation")
    a = [space.sample(random.Random(7), base) for _ in range(3)]
    assert a[0] == a[1] == a[2]
    points = [space.sample(random.Random(seed), base) for seed in range(60)]
    for p in points:
        assert ("model.rope_base" in p) == (p["model.pos_encoding"] == "rope")
        assert 5e-4 <= p["optim.lr"] <= 0.02 and isinstance(p["optim.lr"], float)
    assert {p["model.pos_encoding"] for p in points} == {"rope", "learned", "alibi", "none"}


def test_lr_schedule_children_follow_the_schedule(base):
    space = SearchSpace.load("lr_schedule")
    wsd = {**base, "optim.schedule": "wsd"}
    constant = {**base, "optim.schedule": "constant"}
    assert space.is_active("optim.cooldown_fraction", wsd) and not space.is_active("optim.cooldown_fraction", constant)
    assert space.is_active("optim.min_lr_ratio", {**base, "optim.schedule": "cosine"})
    assert not space.is_active("optim.min_lr_ratio", constant)


def test_check_constraints_names_the_broken_constraint_and_values(base):
    space = SearchSpace.load("arch_basics")
    assert space.check_constraints(base) == []
    broken = space.check_constraints({**base, "model.n_head": 2, "model.n_kv_head": 4})
    assert len(broken) == 1
    assert "model.n_head % model.n_kv_head" in broken[0] and "model.n_kv_head=4" in broken[0]
    # n_kv_head = 0 means "as many as n_head": the 'or' short-circuits before a division by zero.
    assert space.check_constraints({**base, "model.n_kv_head": 0}) == []


def test_int_choices_for_a_float_key_become_floats_and_bools_stay_bools(tmp_path):
    path = _write(
        tmp_path,
        "name: t\nparameters:\n"
        "  model.mlp_ratio: {type: choice, values: [2, 3, 4]}\n"
        "  model.bias: {type: choice, values: [true, false]}\n"
        "  model.block_size: {type: fixed, value: 64}\n",
    )
    space = SearchSpace.load(path)
    ratio = space.parameters["model.mlp_ratio"]
    assert ratio.values == (2.0, 3.0, 4.0) and all(isinstance(v, float) for v in ratio.values)
    assert ratio.value_type == "float" and ratio.ordered is True
    assert space.parameters["model.bias"].values == (True, False)
    assert space.parameters["model.bias"].ordered is False
    assert space.fixed_values() == {"model.block_size": 64}


# --------------------------------------------------------------------------- broken files
BROKEN = [
    (
        "unknown key",
        "name: x\nparameters:\n  model.rope_bsae: {type: range, bounds: [1000, 100000]}\n",
        ["parameters.model.rope_bsae: is not a key of ExperimentConfig", "did you mean model.rope_base?"],
    ),
    (
        "section instead of key",
        "name: x\nparameters:\n  model: {type: choice, values: [tiny, nano]}\n",
        ["parameters.model: is a config section"],
    ),
    (
        "reversed bounds",
        "name: x\nparameters:\n  model.rope_base: {type: range, bounds: [100000, 1000]}\n",
        ["parameters.model.rope_base.bounds: lower bound 100000 must be below upper bound 1000"],
    ),
    (
        "log scale through zero",
        "name: x\nparameters:\n  optim.weight_decay: {type: range, bounds: [0.0, 0.3], log_scale: true}\n",
        ["parameters.optim.weight_decay.bounds: log_scale needs bounds above 0"],
    ),
    (
        "YAML reads 1e6 as text",
        "name: x\nparameters:\n  model.rope_base: {type: range, bounds: [1000, 1e6]}\n",
        ["parameters.model.rope_base.bounds[1]:", "1.0e6"],
    ),
    (
        "bounds of three numbers",
        "name: x\nparameters:\n  optim.lr: {type: range, bounds: [0.001, 0.01, 0.1]}\n",
        ["parameters.optim.lr.bounds:"],
    ),
    (
        "range without bounds",
        "name: x\nparameters:\n  optim.lr: {type: range}\n",
        ["parameters.optim.lr: 'bounds' is a required property"],
    ),
    (
        "misspelt field",
        "name: x\nparameters:\n  optim.lr: {type: range, bounds: [0.001, 0.01], logscale: true}\n",
        ["parameters.optim.lr:", "'logscale' was unexpected"],
    ),
    (
        "unknown top-level field",
        "name: x\nparams: {}\nparameters:\n  optim.lr: {type: range, bounds: [0.001, 0.01]}\n",
        ["(top level):", "'params' was unexpected"],
    ),
    (
        "forbidden key: seed",
        "name: x\nparameters:\n  seed: {type: range, bounds: [0, 100]}\n",
        ["parameters.seed: may not be searched: moving the seed finds luck"],
    ),
    (
        "forbidden key: hydra",
        "name: x\nparameters:\n  hydra.run.dir: {type: choice, values: [a, b]}\n",
        ["parameters.hydra.run.dir: may not be searched"],
    ),
    (
        "forbidden key: data.path",
        "name: x\nparameters:\n  data.path: {type: choice, values: [a, b]}\n",
        ["parameters.data.path: may not be searched"],
    ),
    (
        "wrong value_type",
        "name: x\nparameters:\n  model.n_layer: {type: range, value_type: float, bounds: [2, 6]}\n",
        ["parameters.model.n_layer.value_type: must be int"],
    ),
    (
        "fractional int bounds",
        "name: x\nparameters:\n  model.n_layer: {type: range, bounds: [1.5, 6]}\n",
        ["parameters.model.n_layer.bounds: an int range needs whole-number bounds"],
    ),
    (
        "range over a string key",
        "name: x\nparameters:\n  model.norm: {type: range, bounds: [0, 1]}\n",
        ["parameters.model.norm.type: a range needs a numeric key"],
    ),
    (
        "choice value of the wrong type",
        "name: x\nparameters:\n  model.qk_norm: {type: choice, values: [true, 'no']}\n",
        ["parameters.model.qk_norm.values[1]: must be true or false"],
    ),
    (
        "field that does not apply",
        "name: x\nparameters:\n  model.norm: {type: choice, values: [rms, layer], bounds: [0, 1]}\n",
        ["parameters.model.norm.bounds: does not apply to a choice parameter"],
    ),
    (
        "depends_on a value the parent never takes",
        "name: x\nparameters:\n  model.pos_encoding: {type: choice, values: [rope, alibi]}\n"
        "  model.rope_base: {type: range, bounds: [1000, 100000], depends_on: {model.pos_encoding: [rotary]}}\n",
        ["parameters.model.rope_base.depends_on.model.pos_encoding: ['rotary'] not among"],
    ),
    (
        "depends_on a range parameter",
        "name: x\nparameters:\n  optim.lr: {type: range, bounds: [0.001, 0.01]}\n"
        "  optim.warmup_fraction: {type: range, bounds: [0.0, 0.1], depends_on: {optim.lr: [0.001]}}\n",
        ["parameters.optim.warmup_fraction.depends_on.optim.lr: only a choice or fixed parameter"],
    ),
    (
        "depends_on a fixed value that never matches",
        "name: x\nparameters:\n  optim.schedule: {type: fixed, value: cosine}\n"
        "  optim.cooldown_fraction: {type: range, bounds: [0.1, 0.5], depends_on: {optim.schedule: [wsd]}}\n",
        ["parameters.optim.cooldown_fraction.depends_on.optim.schedule: never active: optim.schedule is fixed at 'cosine'"],
    ),
    (
        "dependency cycle",
        "name: x\nparameters:\n  model.norm: {type: choice, values: [rms, layer], depends_on: {model.activation: [gelu]}}\n"
        "  model.activation: {type: choice, values: [gelu, relu2], depends_on: {model.norm: [rms]}}\n",
        ["dependency cycle: model.norm depends on model.activation depends on model.norm"],
    ),
    (
        "constraint with a function call",
        "name: x\nparameters:\n  model.n_head: {type: choice, values: [2, 4]}\nconstraints:\n  - \"__import__('os').system('true') == 0\"\n",
        ["constraints[0]: function calls are not allowed"],
    ),
    (
        "constraint on an unknown key",
        "name: x\nparameters:\n  model.n_head: {type: choice, values: [2, 4]}\nconstraints:\n  - \"model.n_embed % model.n_head == 0\"\n",
        ["constraints[0]: 'model.n_embed' is not a config key"],
    ),
    (
        "duplicate YAML key",
        "name: x\nparameters:\n  optim.lr: {type: range, bounds: [0.001, 0.01]}\n  optim.lr: {type: range, bounds: [0.001, 0.1]}\n",
        ["(yaml):", "duplicate key 'optim.lr'"],
    ),
]


@pytest.mark.parametrize("label,text,expected", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_space_error_names_file_and_json_path(tmp_path, monkeypatch, label, text, expected):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, text)
    with pytest.raises(SearchSpaceError) as err:
        SearchSpace.load(Path("broken.yaml"))
    message = str(err.value)
    for line in err.value.problems:
        assert line.startswith("broken.yaml: "), line
    for fragment in expected:
        assert fragment in message, f"{label}: {fragment!r} not in {message!r}"


def test_every_problem_in_a_file_is_reported_at_once(tmp_path):
    path = _write(
        tmp_path,
        "name: x\nparameters:\n  model.n_layers: {type: range, bounds: [2, 6]}\n"
        "  seed: {type: range, bounds: [0, 9]}\n  optim.lr: {type: range, bounds: [0.1, 0.01]}\n",
    )
    with pytest.raises(SearchSpaceError) as err:
        SearchSpace.load(path)
    assert len(err.value.problems) == 3
    assert all(str(path) in p or "broken.yaml" in p for p in err.value.problems)


def test_space_objects_are_immutable():
    space = SearchSpace.load("quickstart")
    with pytest.raises(dataclasses.FrozenInstanceError):
        space.name = "other"  # type: ignore[misc]


def test_sample_gives_up_loudly_when_constraints_exclude_everything(tmp_path, base):
    path = _write(
        tmp_path,
        "name: x\nparameters:\n  model.n_head: {type: choice, values: [3, 5]}\n"
        "constraints:\n  - \"model.n_embd % model.n_head == 0\"\n",
    )
    with pytest.raises(SearchSpaceError, match="no point satisfying"):
        SearchSpace.load(path).sample(random.Random(0), base)


# --------------------------------------------------------------------------- constraints
KEYS = ["model.n_embd", "model.n_head", "model.n_kv_head", "model.pos_encoding", "optim.lr"]


@pytest.mark.parametrize(
    "source",
    [
        "__import__('os')",
        "__import__('os').system('echo pwned') == 0",
        "().__class__.__bases__ == 0",
        "model.__class__ == 1",
        "model.n_embd.__class__ == int",
        "'abc'.upper() == 'ABC'",
        "[x for x in (1, 2)] == 0",
        "(lambda: 1)() == 1",
        "model.n_embd ** 100000 == 0",
        "{'a': 1}['a'] == 1",
        "model.n_embd[0] == 1",
        "model.n_embd in [1, 2]",
        "model.n_embd in (model.n_head, 2)",
        "model.n_embd if model.n_head else 0",
        "(model.n_head := 3) == 3",
        "None == model.n_embd",
        "model.n_embd == 1; import os",
        "model.n_embd & 1 == 0",
    ],
)
def test_constraint_interpreter_refuses_anything_but_arithmetic_on_keys(source):
    with pytest.raises(ConstraintSyntaxError):
        Constraint.parse(source, KEYS)


@pytest.mark.parametrize(
    "source,values,expected",
    [
        ("model.n_embd % model.n_head == 0", {"model.n_embd": 128, "model.n_head": 4}, True),
        ("model.n_embd % model.n_head == 0", {"model.n_embd": 100, "model.n_head": 3}, False),
        ("model.n_embd // model.n_head >= 16 and not model.n_head > 8", {"model.n_embd": 128, "model.n_head": 4}, True),
        ("model.n_kv_head == 0 or model.n_head % model.n_kv_head == 0", {"model.n_head": 4, "model.n_kv_head": 0}, True),
        ("model.pos_encoding in ('rope', 'alibi')", {"model.pos_encoding": "none"}, False),
        ("model.pos_encoding not in ('rope',)", {"model.pos_encoding": "none"}, True),
        ("1e-4 < optim.lr * 2 <= 0.02", {"optim.lr": 0.003}, True),
        ("-model.n_head + 5 == 1", {"model.n_head": 4}, True),
    ],
)
def test_constraint_interpreter_evaluates_allowed_expressions(source, values, expected):
    assert Constraint.parse(source, KEYS).evaluate(values) is expected


def test_constraint_that_cannot_be_evaluated_is_reported_not_raised(tmp_path, base):
    path = _write(
        tmp_path,
        "name: x\nparameters:\n  model.n_kv_head: {type: choice, values: [0, 2]}\n"
        "constraints:\n  - \"model.n_head % model.n_kv_head == 0\"\n  - \"model.pos_encoding * 3 == 1\"\n",
    )
    space = SearchSpace.load(path)
    broken = space.check_constraints({**base, "model.n_kv_head": 0})
    assert "division by zero" in broken[0]
    assert "needs numbers" in broken[1]  # no string repetition: '*' is for numbers only
