"""bench/curve_bank.py end to end on a tiny bank: record, add baseline repeats, refuse a changed baseline."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from autoresearch.critic import CurveBank

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "curve_bank.py"
TINY = ["model.n_embd=32", "model.block_size=32", "trainer.batch_size=4", "trainer.eval_bytes=2048",
        "trainer.final_eval_bytes=2048", "trainer.threads=1"]


@pytest.fixture(scope="module")
def curve_bank():
    spec = importlib.util.spec_from_file_location("curve_bank_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cli(bank: Path, *args: str) -> list[str]:
    return ["--bank", str(bank), *args, *(a for o in TINY for a in ("--override", o))]


def test_record_then_add_noise_keeps_the_recorded_baseline(curve_bank, tmp_path):
    bank_path = tmp_path / "bank.json"
    curve_bank.main(_cli(bank_path, "--record", "--configs", "2", "--noise-repeats", "2",
                         "--budget-value", "6", "--eval-points", "2"))
    bank = CurveBank.load(bank_path)
    assert len(bank.curves) == 2 and len(bank.noise) == 2
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
