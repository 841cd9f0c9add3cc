"""The foundation: one experiment end to end through the real Hydra app, deterministic and
refusing bad input with one clear line."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from autoresearch.config import compose, to_experiment_config
from autoresearch.experiment import SUMMARY_KEYS, RunResult, run_experiment

REPO = Path(__file__).resolve().parents[1]


def _app(args: list[str], cwd: Path, env_cache: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "AUTORESEARCH_CACHE": env_cache}
    return subprocess.run([sys.executable, "-m", "autoresearch", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_app_runs_one_experiment_and_writes_run_dir(tmp_path, data_cache, tiny_overrides):
    run_dir = tmp_path / "run"
    proc = _app([*tiny_overrides, f"hydra.run.dir={run_dir}"], tmp_path, data_cache)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in ("config.yaml", "overrides.yaml", "metrics.json", "curve.jsonl", "run.log", ".hydra"):
        assert (run_dir / name).exists(), name
    log_lines = (run_dir / "run.log").read_text().splitlines()
    summary = {line.split(":", 1)[0]: line.split(":", 1)[1].strip() for line in log_lines if ":" in line and not line.startswith("[")}
    for key in SUMMARY_KEYS:
        assert key in summary, key
    assert any(line.startswith("val_bpb:") for line in proc.stdout.splitlines())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["num_steps"] == 20 and math.isfinite(metrics["val_bpb"])
    curve = [json.loads(line) for line in (run_dir / "curve.jsonl").read_text().splitlines()]
    assert curve[-1]["progress"] == 1.0 and "val_bpb" in curve[-1]
    assert "model=tiny" in (run_dir / "overrides.yaml").read_text()


def test_same_seed_same_val_bpb(tmp_path, tiny_overrides):
    """Steps budget on CPU: a second run of the same config and seed gives the same val_bpb to 1e-6."""
    cfg = to_experiment_config(compose([*tiny_overrides, "trainer.budget.value=8"]))
    a = run_experiment(cfg, tmp_path / "a", bundle=False)
    b = run_experiment(cfg, tmp_path / "b", bundle=False)
    assert a.status == b.status == "completed"
    assert abs(a.val_bpb - b.val_bpb) < 1e-6
    c = run_experiment(to_experiment_config(compose([*tiny_overrides, "trainer.budget.value=8", "seed=7"])),
                       tmp_path / "c", bundle=False)
    assert abs(a.val_bpb - c.val_bpb) > 1e-6  # and the seed really matters


def test_a_seconds_budget_keeps_its_warm_up_steps_apart(tmp_path, tiny_overrides):
    """The untimed warm-up steps train but stay off a seconds budget's clock; their time is recorded
    apart (the overhead bench counts it as training). A steps budget counts every step."""
    timed = run_experiment(to_experiment_config(compose([
        *tiny_overrides, "trainer.budget.kind=seconds", "trainer.budget.value=1.0",
        "trainer.untimed_warmup_steps=2"])), tmp_path / "s", bundle=False)
    assert timed.status == "completed" and timed.num_steps > 2
    assert timed.warmup_steps == 2 and timed.warmup_seconds > 0
    assert timed.training_seconds >= 1.0 and timed.total_seconds >= timed.training_seconds + timed.warmup_seconds
    assert RunResult.load(tmp_path / "s" / "metrics.json").warmup_seconds == timed.warmup_seconds
    steps = run_experiment(to_experiment_config(compose([*tiny_overrides, "trainer.budget.value=4"])),
                           tmp_path / "n", bundle=False)
    assert steps.num_steps == 4 and steps.warmup_steps == 0 and steps.warmup_seconds == 0.0


@pytest.mark.parametrize(
    "override, key",
    [
        ("model.n_embd=130", "model.n_embd"),
        ("optim.lr=-0.1", "optim.lr"),
        ("model.activation=tanh", "model.activation"),
        ("trainer.budget.kind=minutes", "trainer.budget.kind"),
        ("data=text", "data.path"),
        ("data=text data.path=/no/such/corpus", "data.path"),
        ("model=gigantic", "model"),
        ("model.n_embedding=64", "n_embedding"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path, data_cache, override, key):
    proc = _app([*override.split(), "model=tiny" if "model=" not in override else "trainer=smoke",
                 f"hydra.run.dir={tmp_path / 'run'}"], tmp_path, data_cache)
    assert proc.returncode != 0
    err = proc.stderr
    assert key in err, err
    assert "Traceback" not in err, err


def test_empty_corpus_is_refused_naming_the_file(tmp_path, data_cache):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "empty.txt").write_text("   \n")
    proc = _app(["model=tiny", "trainer=smoke", "data=text", f"data.path={corpus}",
                 f"hydra.run.dir={tmp_path / 'run'}"], tmp_path, data_cache)
    assert proc.returncode != 0
    assert "data.path" in proc.stderr and str(corpus) in proc.stderr
    assert "Traceback" not in proc.stderr


def test_diverging_run_ends_with_a_status_not_a_crash(tmp_path, tiny_overrides):
    cfg = to_experiment_config(compose([*tiny_overrides, "optim.lr=50", "optim.warmup_fraction=0", "trainer.grad_clip=0",
                                        "trainer.budget.value=60"]))
    result = run_experiment(cfg, tmp_path / "run", bundle=False)
    assert result.status == "diverged" and result.error
    assert RunResult.load(tmp_path / "run" / "metrics.json").status == "diverged"


def test_stop_file_ends_run_as_early_stopped(tmp_path, tiny_overrides):
    cfg = to_experiment_config(compose(tiny_overrides))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "STOP").write_text("critic says stop")
    result = run_experiment(cfg, run_dir, bundle=False)
    assert result.status == "early_stopped" and result.num_steps == 0


def test_every_shipped_config_composes():
    from autoresearch.config import CONF_DIR

    for group in ("model", "data", "trainer", "optim", "agent", "critic", "logger"):
        for option in sorted((CONF_DIR / group).glob("*.yaml")):
            extra = ["data.path=/tmp"] if group == "data" and option.stem in ("text", "parquet") else []
            to_experiment_config(compose([f"{group}={option.stem}", *extra]))
    for option in sorted((CONF_DIR / "campaign").glob("*.yaml")):
        cfg = to_experiment_config(compose([f"+campaign={option.stem}"]))
        assert cfg.campaign is not None and cfg.campaign.name == option.stem
