"""A trial's config is composed once and reused across seeds only when that is exact."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from autoresearch.campaign import TrialComposer
from autoresearch.config import compose, to_experiment_config


def _composer(tmp_path: Path, *extra: str) -> TrialComposer:
    overrides = ["+campaign=quickstart", "agent=random", "knowledge.embedder.kind=hashing", "logger=none",
                 f"campaign.root={tmp_path / 'campaigns'}", f"knowledge.db={tmp_path / 'knowledge.sqlite'}", *extra]
    cfg = to_experiment_config(compose(overrides))
    return TrialComposer(overrides, dataclasses.replace(cfg, campaign=None))


@pytest.mark.parametrize("extra, leaf", [((), True), (("data.split_seed=${seed}",), False)])
def test_other_seeds_reuse_a_composition_only_when_nothing_interpolates_the_seed(tmp_path, extra, leaf):
    composer = _composer(tmp_path, *extra)
    assert composer.check_seed_is_a_leaf() is leaf
    first = composer.compose(["optim.lr=0.004"], seed=1)
    again = composer.compose(["optim.lr=0.004"], seed=2)
    assert again == composer.hydra_compose(["optim.lr=0.004"], 2)  # exactly what Hydra composes
    assert (first.seed, again.seed) == (1, 2)
    assert again.data.split_seed == (2 if not leaf else first.data.split_seed)


def test_the_fingerprint_is_of_the_whole_configuration(tmp_path):
    composer = _composer(tmp_path)
    assert composer.fingerprint({}) == composer.fingerprint({})
    assert composer.fingerprint({"optim.lr": 0.004}) != composer.fingerprint({})
