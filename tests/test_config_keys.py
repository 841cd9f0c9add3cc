"""Every key of a composed config is checked against ExperimentConfig, whatever its prefix.

Hydra lets a key added with ``+`` or ``++`` through composition unchecked, and OmegaConf drops
it when typing, so a typo (``+model.n_layers=8``) used to train the default model silently.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from autoresearch.config import ConfigError, compose, to_experiment_config, unknown_keys
from autoresearch.experiment import CHECKPOINT_FILE, METRICS_FILE

ROOT = Path(__file__).resolve().parent.parent


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
