"""bench/search_quality.py: its trial runner equals the composed config, its TPE adapter honours the
space, and a tiny end-to-end run writes a sane table, JSON and PNG."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
from bench_script import load_bench_script

from autoresearch.agents import AgentContext, TrialRecord
from autoresearch.config import compose, flatten, to_dict, to_experiment_config
from autoresearch.search import Hypothesis, SearchSpace, validate_hypothesis

AGENTS = ("random", "bayes", "playbook", "hybrid", "tpe")


@pytest.fixture(scope="module")
def bench():
    return load_bench_script("search_quality")


def test_overrides_applied_in_process_equal_hydra_compose(bench):
    base = ["+campaign=lr_schedule", "trainer.budget.kind=steps", "trainer.budget.value=5"]
    overrides = {"optim.schedule": "wsd", "optim.cooldown_fraction": 0.3, "optim.lr": 0.004, "model.activation": "gelu"}
    direct = bench.with_overrides(to_experiment_config(compose(base)), overrides)
    composed = to_experiment_config(compose(base + Hypothesis(overrides=overrides).override_strings()))
    assert direct == composed
    with pytest.raises(ValueError, match="optim.lr"):
        bench.with_overrides(direct, {"optim.lr": -1.0})


def test_tpe_adapter_honours_choices_log_ranges_and_conditions(bench):
    space = SearchSpace.load("lr_schedule")
    base = flatten(to_dict(to_experiment_config(compose(["+campaign=lr_schedule"]))))
    agent = bench.TPEAgent(space, base, seed=0, startup_trials=4)
    rng = random.Random(0)
    history: list[TrialRecord] = []
    for i in range(12):
        proposal = agent.propose(AgentContext(space=space, base=base, history=list(history), baseline_bpb=3.0))
        h = proposal.hypothesis
        assert isinstance(validate_hypothesis(h.to_dict(), space=space, base=base, agent="x"), Hypothesis)
        full = {**base, **h.overrides}
        assert ("optim.cooldown_fraction" in h.overrides) <= (full["optim.schedule"] == "wsd")  # only when active
        assert 0.0005 <= full["optim.lr"] <= 0.02 and full["optim.beta2"] in (0.9, 0.95, 0.98, 0.99, 0.999)
        # a synthetic objective: TPE must be told every value (its study grows with each trial)
        record = TrialRecord(trial_id=i + 1, overrides=h.overrides, status="completed", agent="tpe",
                             val_bpb=abs(math.log(full["optim.lr"] / 0.004)) + rng.random() * 0.01)
        history.append(record)
        agent.observe(record)
    finished = [t for t in agent.study.trials if t.value is not None]
    assert len(finished) == 12 + 1  # every trial and the baseline
    for t in finished[1:]:  # define-by-run: a dependent key is suggested exactly when its condition holds
        assert ("optim.cooldown_fraction" in t.params) == (t.params["optim.schedule"] == "wsd")
        assert ("optim.min_lr_ratio" in t.params) == (t.params["optim.schedule"] != "constant")


@pytest.mark.slow
def test_quick_run_writes_a_sane_table_json_and_plot(bench, tmp_path, capsys):
    bench.main(["--quick", "--trials", "3", "--spaces", "quickstart", "--out", str(tmp_path)])
    table = (tmp_path / "search_quality.txt").read_text()
    for agent in AGENTS:
        assert f"| {agent} | " in table
    assert "trials to reach random's final best" in table and "hybrid − TPE final best, paired by repeat" in table
    assert "taken from the fingerprint cache" in table
    png = (tmp_path / "search_quality.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    saved = json.loads((tmp_path / "search_quality.json").read_text())
    assert saved["partial"] is False and saved["args"]["steps"] == 5
    runs = saved["runs"]
    assert sorted(r["agent"] for r in runs) == sorted(AGENTS)
    assert len({r["baseline"] for r in runs}) == 1  # one objective: every agent met the same baseline
    for r in runs:
        assert len(r["values"]) == 3 and all(math.isfinite(v) and 0 < v < 10 for v in r["values"])
        curve = bench.SearchRun(**r).best_so_far(3)
        assert all(b <= a for a, b in zip(curve, curve[1:])) and curve[0] <= r["baseline"]
    # re-summarising the saved runs gives the same table body
    again = tmp_path / "again"
    bench.main(["--from-json", str(tmp_path / "search_quality.json"), "--out", str(again)])
    merged = (again / "search_quality.txt").read_text()
    assert "merged from 1 saved files" in merged and merged.split("\n## ", 1)[1] == table.split("\n## ", 1)[1]


def test_merge_selects_agents_per_file_and_refuses_unfair_pairs(bench, tmp_path):
    def saved(name, runs):
        path = tmp_path / name
        path.write_text(json.dumps({"args": {"trials": 2, "steps": 5, "eval_bytes": 2048}, "partial": False,
                                    "runs": [dict(space="quickstart", agent=a, repeat=0, baseline=b, values=[3.0, 2.0])
                                             for a, b in runs]}))
        return str(path)

    before = saved("before.json", [("random", 4.0), ("hybrid", 4.0)])
    after = saved("after.json", [("hybrid", 4.0)])
    assert bench._json_spec(f"{before}:random,tpe") == (Path(before), {"random", "tpe"})
    assert bench._json_spec(before) == (Path(before), None)
    out = tmp_path / "merged"
    bench.main(["--from-json", f"{before}:random", after, "--out", str(out)])
    assert "| hybrid | " in (out / "search_quality.txt").read_text()
    with pytest.raises(SystemExit, match="twice"):  # the before file's hybrid and the after file's
        bench.main(["--from-json", before, after, "--out", str(out)])
    other = saved("other.json", [("tpe", 4.5)])  # another objective: a different baseline at the same repeat
    with pytest.raises(SystemExit, match="did not share an objective"):
        bench.main(["--from-json", f"{before}:random", other, "--out", str(out)])
