"""Random training windows from a token array, reproducible from a seed and resumable."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from autoresearch.config import ConfigError, ConfigProblem

if TYPE_CHECKING:
    import torch


class BatchSampler:
    """Draws ``batch_size`` windows of ``block_size + 1`` tokens at uniformly random offsets.

    ``next()`` returns ``(x, y)``, int64 tensors of shape (B, T) with ``y`` = ``x`` shifted one
    token left. The windows depend only on ``seed`` and how many batches were drawn, so two runs
    with one seed see the same data in the same order; ``state_dict()`` captures the position.
    Sampling is with replacement: no epoch boundaries to track under a time budget.
    """

    def __init__(self, tokens: np.ndarray, batch_size: int, block_size: int, seed: int):
        if batch_size <= 0:
            raise ConfigError([ConfigProblem("trainer.batch_size", f"must be > 0, got {batch_size}")])
        if len(tokens) < block_size + 1:
            raise ConfigError(
                [
                    ConfigProblem(
                        "model.block_size",
                        f"{block_size} needs at least {block_size + 1} tokens, the split has {len(tokens)}: lower it or use a larger corpus",
                    )
                ]
            )
        self.tokens = tokens
        self.batch_size = batch_size
        self.block_size = block_size
        self.seed = seed
        self._rng = np.random.Generator(np.random.PCG64(seed))
        self._offsets = np.arange(block_size + 1, dtype=np.int64)  # (T+1,)
        self.batches_drawn = 0

    def next(self) -> tuple["torch.Tensor", "torch.Tensor"]:
        import torch  # here, not at the top: ``python -m autoresearch.data`` should not pay for torch

        starts = self._rng.integers(0, len(self.tokens) - self.block_size, size=self.batch_size)  # (B,)
        windows = np.asarray(self.tokens[starts[:, None] + self._offsets], dtype=np.int64)  # (B, T+1)
        self.batches_drawn += 1
        x = torch.from_numpy(np.ascontiguousarray(windows[:, :-1]))
        y = torch.from_numpy(np.ascontiguousarray(windows[:, 1:]))
        return x, y

    def state_dict(self) -> dict:
        return {
            "seed": self.seed,
            "batches_drawn": self.batches_drawn,
            "rng": self._rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict) -> None:
        if state["seed"] != self.seed:
            raise ValueError(f"sampler state was saved with seed {state['seed']}, this sampler has seed {self.seed}")
        self._rng.bit_generator.state = state["rng"]
        self.batches_drawn = int(state["batches_drawn"])
