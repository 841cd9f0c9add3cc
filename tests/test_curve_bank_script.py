"""bench/curve_bank.py end to end on a tiny bank: record, add baseline repeats, refuse a changed baseline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench_script import load_bench_script

from autoresearch.critic import CurveBank

TINY = ["model.n_embd=32", "model.block_size=32", "trainer.batch_size=4", "trainer.eval_bytes=2048",
        "trainer.final_eval_bytes=2048", "trainer.threads=1"]


@pytest.fixture(scope="module")
def curve_bank():
    return load_bench_script("curve_bank")


def _cli(bank: Path, *args: str) -> list[str]:
    return ["--bank", str(bank), *args, *(a for o in TINY for a in ("--override", o))]


def test_record_then_add_noise_keeps_the_recorded_baseline(curve_bank, tmp_path):
    bank_path = tmp_path / "bank.json"
    curve_bank.main(_cli(bank_path, "--record", "--configs", "2", "--noise-repeats", "2",
                         "--budget-value", "6", "--eval-points", "2"))
    bank = CurveBank.load(bank_path)
    assert len(bank.curves) == 2 and len(bank.noise) == 2
    # Each configuration's final score is stored beside its curve, on the baseline repeats' scale.
    assert set(bank.finals) == set(bank.curves) and all(2.0 < v < 20.0 for v in bank.finals.values())
    assert bank.meta["noise_seeds"] == [1337, 1338]
    pinned = bank.meta["baseline_overrides"]
    assert {o.split("=")[0] for o in pinned} == {"optim.lr", "model.activation", "model.pos_encoding",
                                                  "model.qk_norm", "model.norm"}

    curve_bank.main(_cli(bank_path, "--add-noise", "1"))
    grown = CurveBank.load(bank_path)
    assert grown.noise[:2] == bank.noise and len(grown.noise) == 3
    assert grown.meta["noise_seeds"] == [1337, 1338, 1339]
    assert grown.curves == bank.curves

    # A baseline that no longer reproduces (code or defaults changed) is refused, and nothing is written.
    data = json.loads(bank_path.read_text())
    data["noise"][0] += 0.01
    bank_path.write_text(json.dumps(data))
    with pytest.raises(SystemExit, match="changed since"):
        curve_bank.main(_cli(bank_path, "--add-noise", "1"))
    assert len(json.loads(bank_path.read_text())["noise"]) == 3


def test_record_samples_the_named_space_with_enough_baseline_seeds(curve_bank, tmp_path):
    """``--space`` samples another shipped space on the campaign's model; the quickstart lists 3 seeds,
    and a noise floor of 4 repeats takes consecutive seeds from its first."""
    bank_path = tmp_path / "lr.json"
    curve_bank.main(_cli(bank_path, "--record", "--space", "lr_schedule", "--configs", "1", "--noise-repeats", "4",
                         "--budget-value", "4", "--eval-points", "2"))
    bank = CurveBank.load(bank_path)
    assert bank.meta["search_space"] == "lr_schedule" and bank.meta["noise_seeds"] == [1337, 1338, 1339, 1340]
    assert {o.split("=")[0] for o in bank.meta["baseline_overrides"]} >= {"optim.lr", "optim.schedule", "optim.beta2"}
    assert all(o.split("=")[0].startswith("optim.") for o in bank.overrides["config000"])


def test_record_resume_extends_a_cut_short_bank_and_refuses_another_recording(curve_bank, tmp_path):
    """``--record --resume`` carries on with the same sampled configurations (a recording cut short,
    or more ``--configs``) after the first baseline repeat reproduces; a different recording
    (another sampling seed) or a baseline that no longer reproduces is refused, nothing written."""
    bank_path = tmp_path / "bank.json"
    common = ("--noise-repeats", "1", "--budget-value", "4", "--eval-points", "2", "--seed", "3")
    curve_bank.main(_cli(bank_path, "--record", "--configs", "1", *common))
    first = CurveBank.load(bank_path)
    assert list(first.curves) == ["config000"] and len(first.noise) == 1

    curve_bank.main(_cli(bank_path, "--record", "--resume", "--configs", "3", *common))
    grown = CurveBank.load(bank_path)
    assert list(grown.curves) == ["config000", "config001", "config002"]
    assert grown.curves["config000"] == first.curves["config000"] and grown.noise == first.noise
    # The same command from scratch samples the same three configurations.
    fresh_path = tmp_path / "fresh.json"
    curve_bank.main(_cli(fresh_path, "--record", "--configs", "3", *common))
    assert CurveBank.load(fresh_path).overrides == grown.overrides

    before = bank_path.read_text()
    with pytest.raises(SystemExit, match="recorded with seed=3"):
        curve_bank.main(_cli(bank_path, "--record", "--resume", "--configs", "4",
                             *common[:-1], "4"))
    data = json.loads(before)
    data["noise"][0] += 0.01
    bank_path.write_text(json.dumps(data))
    with pytest.raises(SystemExit, match="changed since"):
        curve_bank.main(_cli(bank_path, "--record", "--resume", "--configs", "4", *common))
    assert len(json.loads(bank_path.read_text())["curves"]) == 3
