"""A trial's config is composed once and reused across seeds only when that is exact."""

from __future__ import annotations

from pathlib import Path

import pytest

from autoresearch.campaign import Campaign
from autoresearch.config import compose, to_experiment_config


def _campaign(tmp_path: Path, *extra: str) -> Campaign:
    overrides = ["+campaign=quickstart", "agent=random", "knowledge.embedder=hashing", "logger=none",
                 f"campaign.root={tmp_path / 'campaigns'}", f"knowledge.db={tmp_path / 'knowledge.sqlite'}", *extra]
    campaign = Campaign(to_experiment_config(compose(overrides)), overrides, interactive=False)
    campaign.launcher.close()
    return campaign


@pytest.mark.parametrize("extra, leaf", [((), True), (("data.split_seed=${seed}",), False)])
def test_other_seeds_reuse_a_composition_only_when_nothing_interpolates_the_seed(tmp_path, extra, leaf):
    campaign = _campaign(tmp_path, *extra)
    campaign._first_trial_training.set()  # no trial will run here
    campaign._pool.shutdown(wait=True)  # the seed check ran on the proposal thread
    assert campaign._seed_is_a_leaf is leaf
    first = campaign._compose(["optim.lr=0.004"], seed=1)
    again = campaign._compose(["optim.lr=0.004"], seed=2)
    assert again == campaign._hydra_compose(["optim.lr=0.004"], 2)  # exactly what Hydra composes
    assert (first.seed, again.seed) == (1, 2)
    assert again.data.split_seed == (2 if not leaf else first.data.split_seed)
    campaign.store.close()
