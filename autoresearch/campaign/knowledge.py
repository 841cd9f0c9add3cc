"""The campaign's view of the knowledge package: semantic memory and literature, or nothing.

Memory and literature are aids, not preconditions: when they cannot load (no embedding model, no
network) the campaign goes on, and repeats are still caught by fingerprint. A configuration error
in them is still an error.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

from autoresearch.config import ConfigError, ExperimentConfig
from autoresearch.search import Hypothesis, SearchSpace

log = logging.getLogger(__name__)


class Knowledge:
    """Semantic memory and literature, or nothing when they cannot load (the campaign goes on)."""

    def __init__(self, memory=None, literature=None, cfg=None):
        self.memory = memory
        self.literature = literature
        self.cfg = cfg

    @classmethod
    def create(cls, cfg: ExperimentConfig, store) -> "Knowledge":
        try:
            from autoresearch.knowledge import Literature, Memory, make_embedder

            kcfg = cfg.knowledge
            embedder = make_embedder(kcfg.embedder.kind, model=kcfg.embedder.model or None)
            literature = Literature(store, embedder, threshold=kcfg.literature_threshold)
            for path in kcfg.literature_files:
                literature.add_file(Path(path))
            return cls(Memory(store, embedder, duplicate_threshold=kcfg.duplicate_threshold), literature, kcfg)
        except ConfigError:
            raise
        except Exception as err:  # noqa: BLE001 - memory is an aid, not a precondition
            log.warning("semantic memory unavailable (%s: %s); duplicates are still caught by fingerprint",
                        type(err).__name__, err)
            return cls()

    def warm_up(self) -> None:
        """Load the embedding model and embed what the store holds, off the critical path."""
        if self.memory is not None:
            try:
                self.memory.embedder.embed(["warm-up"])  # loads the model once
                self.memory.sync()
            except Exception as err:  # noqa: BLE001 - memory is an aid, not a precondition
                log.warning("semantic memory could not warm up: %s", err)

    def duplicate_of(self, hyp: Hypothesis, fingerprint: str) -> Optional[str]:
        if self.memory is None:
            return None
        hit = self.memory.find_duplicate(hyp.to_dict(), fingerprint)
        return hit.reason if hit else None

    def literature_match(self, hyp: Hypothesis, base: dict[str, Any]):
        if self.literature is None:
            return None
        return self.literature.check(hyp.to_dict(), context=base)

    def neighbour_lines(self, overrides: dict[str, Any]) -> list[str]:
        if self.memory is None or self.cfg is None or self.cfg.neighbours == 0:
            return []
        query = {"overrides": overrides, "rationale": ""}
        return [n.summary() for n in self.memory.nearest(query, k=self.cfg.neighbours)]

    def literature_lines(self, space: SearchSpace) -> list[str]:
        if self.literature is None:
            return []
        keys = set(space.parameters)
        return [f"{e.citation}: {e.claimed_effect}" for e in self.literature.entries
                if keys & set(e.keys)][:12]

    def remember(self, trial) -> None:
        if self.memory is None:
            return
        try:
            self.memory.remember_trial(trial)
        except Exception as err:  # noqa: BLE001
            log.warning("could not embed t%04d: %s", trial.id, err)
