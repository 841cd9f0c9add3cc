"""Weights & Biases, for users who have it: the same tags and flattened hparams as TensorBoard."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

from autoresearch.config import ConfigError, ConfigProblem
from autoresearch.tracking.base import flatten_hparams, metric_tags, scalar_tags

log = logging.getLogger(__name__)

WANDB_MODES = ("online", "offline", "disabled")


def _import_wandb() -> Any:
    try:
        import wandb
    except ImportError:
        raise ConfigError(
            [
                ConfigProblem(
                    "logger.kind",
                    "is 'wandb' but the wandb package is not installed: "
                    "`pip install 'autoresearch[wandb]'`, or choose logger=tensorboard or logger=none",
                )
            ]
        ) from None
    return wandb


class WandbTracker:
    """One W&B run per training run. ``mode`` defaults to offline (``wandb sync`` uploads later),
    so tracking never needs a network or an API key unless the user asks for ``online``."""

    def __init__(self, *, project: str, run_name: str, log_dir: Path, mode: str = "offline"):
        if mode not in WANDB_MODES:
            raise ConfigError([ConfigProblem("logger.mode", f"must be one of {list(WANDB_MODES)}, got {mode!r}")])
        wandb = _import_wandb()
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._run = wandb.init(project=project, name=run_name, dir=str(self.log_dir), mode=mode, reinit=True)
        self._closed = False
        log.info("W&B run %s (%s mode) in %s", run_name, mode, self.log_dir)

    def log_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
        tags = scalar_tags(scalars)
        if tags and not self._closed:
            self._run.log(tags, step=int(step))

    def log_hparams(self, hparams: Mapping[str, Any], metrics: Mapping[str, Any]) -> None:
        if self._closed:
            return
        self._run.config.update(flatten_hparams(hparams), allow_val_change=True)
        self._run.summary.update(metric_tags(metrics))

    def close(self) -> None:
        if not self._closed:
            self._run.finish()
            self._closed = True

    def __enter__(self) -> "WandbTracker":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
