"""bench/seed_correlation.py and bench/false_discovery.py: real paired runs, measured ρ, the paired simulation."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from bench_script import load_bench_script

from autoresearch.config import CriticConfig, StatTestConfig


@pytest.fixture(scope="module")
def seed_correlation():
    return load_bench_script("seed_correlation")


@pytest.fixture(scope="module")
def false_discovery():
    return load_bench_script("false_discovery")


def test_record_pairs_configurations_by_seed_and_resumes(seed_correlation, tmp_path, monkeypatch):
    """Tiny real runs: both configurations on each seed, written as they finish, never run twice."""
    monkeypatch.setattr(seed_correlation, "DATA", tmp_path / "pairs.json")
    monkeypatch.setitem(seed_correlation.SETTINGS, "tiny", {
        "base": ["model=tiny", "trainer=smoke", "trainer.budget.value=3", "trainer.eval_bytes=2048",
                 "trainer.final_eval_bytes=2048"],
        "changes": {"lr": ["optim.lr=0.02"]},
    })
    seed_correlation.record("tiny", [11, 12])
    entry = json.loads((tmp_path / "pairs.json").read_text())["tiny"]
    ref, lr = entry["configs"]["reference"]["val_bpb"], entry["configs"]["lr"]["val_bpb"]
    assert set(ref) == set(lr) == {"11", "12"}
    assert ref["11"] != ref["12"]  # the seed matters
    assert ref["11"] != lr["11"]  # and so does the change
    assert entry["configs"]["lr"]["overrides"] == ["optim.lr=0.02"]
    before = (tmp_path / "pairs.json").read_text()
    seed_correlation.record("tiny", [11, 12])  # everything is recorded: nothing runs, nothing changes
    assert (tmp_path / "pairs.json").read_text() == before


def test_summary_correlates_only_the_seeds_both_ran(seed_correlation, false_discovery, tmp_path):
    rng = np.random.default_rng(0)
    seeds = [str(s) for s in range(8)]
    shared = rng.normal(size=8)
    ref = dict(zip(seeds, 3.0 + shared + 0.5 * rng.normal(size=8)))
    chg = dict(zip(seeds, 2.9 + shared + 0.5 * rng.normal(size=8)))
    chg["99"] = 1.0  # a seed the reference never ran: not a pair
    data = {"toy": {"base_overrides": [], "configs": {"reference": {"overrides": [], "val_bpb": ref},
                                                       "chg": {"overrides": ["x=1"], "val_bpb": chg}}}}
    out = seed_correlation.summarise(data)
    expected = np.corrcoef([ref[s] for s in seeds], [chg[s] for s in seeds])[0, 1]
    assert out["toy"]["chg"] == pytest.approx(expected)
    assert out["toy"]["pooled"] == pytest.approx(expected)  # one change: the pool is that change
    lo, hi = seed_correlation.fisher_interval(expected, 8)
    assert lo < expected < hi
    path = tmp_path / "pairs.json"
    path.write_text(json.dumps(data))
    assert false_discovery.measured_rho(path)["toy"]["chg"] == pytest.approx(expected)


def test_simulation_pairs_runs_by_seed(false_discovery):
    """With runs that share most of their noise through the seed, pairing is what finds effects."""
    cfg = CriticConfig(noise_seeds=6, validation_seeds=5)
    common = dict(campaigns=40, null=5, per_effect=2, rho=0.8, seed=1, paired=True)
    paired = false_discovery.simulate(replace(cfg, test=StatTestConfig(kind="paired-t")), **common)
    welch = false_discovery.simulate(replace(cfg, test=StatTestConfig(kind="welch")), **common)
    assert paired["power"][1.0] > welch["power"][1.0] + 0.25  # Welch counts the seed's share as noise
    assert paired["power_2sigma"] >= welch["power_2sigma"]
    assert paired["fdr"] <= 0.1


def test_simulation_never_validates_on_two_seeds(false_discovery):
    """K = 2 is below the critic's minimum: nothing is validated, however large the effect."""
    cfg = CriticConfig(noise_seeds=3, validation_seeds=2, test=StatTestConfig(kind="paired-t"))
    r = false_discovery.simulate(cfg, campaigns=20, null=2, per_effect=2, rho=0.5, paired=True, seed=0)
    assert r["power"][3.0] == 0.0 and r["fdr"] == 0.0
