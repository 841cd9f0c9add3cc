"""A trial's config: composed by Hydra once per configuration, reused across seeds when that is exact.

Composition costs ~0.1 s, between trials. The gate composes a hypothesis on the proposal thread and
its screening run reuses that; the runs of one configuration on other seeds differ only in
``seed`` — unless the config interpolates the seed somewhere (``data.split_seed: ${seed}``),
which ``check_seed_is_a_leaf`` answers once.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any, Optional

from autoresearch.config import ExperimentConfig, compose, flatten, to_dict, to_experiment_config
from autoresearch.search.hypothesis import config_fingerprint

# Config sections that make an experiment what it is; the rest (agent, critic, logger, ...) do not.
SUBSTANCE = ("model", "data", "trainer", "optim")
NOT_SUBSTANCE = ("data.cache_dir", "trainer.device", "trainer.threads", "trainer.log_every", "trainer.save_checkpoint")


def substance(flat: dict[str, Any]) -> dict[str, Any]:
    """The keys of a flattened config that decide the outcome of a run (seed excluded)."""
    return {k: v for k, v in flat.items() if k.split(".", 1)[0] in SUBSTANCE and k not in NOT_SUBSTANCE}


class TrialComposer:
    """Hydra composition of trial configs for one campaign, memoised and thread-safe."""

    def __init__(self, cli_overrides: list[str], base_cfg: ExperimentConfig):
        self.cli_overrides = list(cli_overrides)
        self.base_flat = substance(flatten(to_dict(base_cfg)))
        self._cache: dict[tuple[tuple[str, ...], int], ExperimentConfig] = {}
        self._lock = threading.Lock()
        self.seed_is_a_leaf: Optional[bool] = None  # unknown until check_seed_is_a_leaf() ran

    def compose(self, override_strings: list[str], *, seed: int) -> ExperimentConfig:
        with self._lock:
            key = (tuple(override_strings), seed)
            if key in self._cache:
                return self._cache[key]
            same = next((c for (strings, _), c in self._cache.items() if strings == key[0]), None)
            if same is not None and self.seed_is_a_leaf:  # None (not yet known) composes in full
                cfg = dataclasses.replace(same, seed=seed)
            else:
                cfg = self.hydra_compose(override_strings, seed)
            if len(self._cache) >= 256:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = cfg
            return cfg

    def check_seed_is_a_leaf(self) -> bool:
        """Does anything in the config interpolate the seed? Answered once, off the critical path."""
        a, b = (self.hydra_compose([], seed) for seed in (1, 2))
        self.seed_is_a_leaf = dataclasses.replace(a, seed=0) == dataclasses.replace(b, seed=0)
        return self.seed_is_a_leaf

    def hydra_compose(self, override_strings: list[str], seed: int) -> ExperimentConfig:
        """Exactly what Hydra composes for these overrides on top of the campaign's command line."""
        cfg = to_experiment_config(compose([*self.cli_overrides, *override_strings, f"seed={seed}"]))
        return dataclasses.replace(cfg, campaign=None)

    def fingerprint(self, overrides: dict[str, Any]) -> str:
        """The identity of a configuration (base + overrides), shared across campaigns."""
        return config_fingerprint({**self.base_flat, **overrides})
