"""Sharpness inside real training: a planted overfitting setup (a few hundred random bytes that a
comparatively big model memorises) trips the monitor and the trainer raises regularisation; the
same model and optimiser on the real corpus (nothing to memorise) does not."""

from __future__ import annotations

import json
import random

from autoresearch.config import compose, to_experiment_config
from autoresearch.experiment import run_experiment

SAME_MODEL = ["model.n_layer=2", "model.n_embd=64", "model.n_head=2", "model.block_size=16",
              "optim.lr=0.003", "optim.weight_decay=0.0", "optim.schedule=constant", "trainer.budget.value=80"]
# Measured here: the trace stays ~100-300 on Shakespeare and climbs past 1000 while memorising.
SHARPNESS = ["trainer.sharpness.enabled=true", "trainer.sharpness.every=10", "trainer.sharpness.probes=2",
             "trainer.sharpness.batch_size=4", "trainer.sharpness.threshold=1000"]


def _run(tmp_path, name, overrides):
    cfg = to_experiment_config(compose(["trainer=smoke", "logger=none", *SAME_MODEL, *SHARPNESS, *overrides]))
    result = run_experiment(cfg, tmp_path / name, bundle=False)
    rows = [json.loads(line) for line in (tmp_path / name / "curve.jsonl").read_text().splitlines()]
    return result, [r["sharpness"] for r in rows if "sharpness" in r], rows


def test_planted_overfitting_triggers_an_intervention_and_a_healthy_run_does_not(tmp_path):
    corpus = tmp_path / "random_bytes"
    corpus.mkdir()
    rng = random.Random(0)
    for name in "abc":
        (corpus / f"{name}.txt").write_text("".join(rng.choice("abcdefghijklmnopqrstuvwxyz ") for _ in range(400)))
    overfit, traces, rows = _run(tmp_path, "overfit", [
        "data=text", f"data.path={corpus}", "data.val_fraction=0.34", "data.test_fraction=0.33"])
    assert overfit.status == "completed" and len(traces) >= 4
    assert overfit.interventions, f"no intervention; traces {traces}"
    first = overfit.interventions[0]
    assert first["dropout"] > 0 and first["weight_decay_delta"] > 0 and "threshold" in first["reason"]
    assert any("intervention" in r for r in rows)  # recorded with the curve, not only in metrics

    healthy, healthy_traces, _ = _run(tmp_path, "healthy", [])
    assert healthy.status == "completed" and len(healthy_traces) >= 4
    assert healthy.interventions == [], healthy_traces
