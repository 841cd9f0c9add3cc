"""Choose the tracker a ``logger`` config asks for."""

from __future__ import annotations

from pathlib import Path

from autoresearch.config import ConfigError, ConfigProblem, LoggerConfig
from autoresearch.tracking.base import NullTracker, Tracker


def make_tracker(cfg: LoggerConfig, log_dir: Path, run_name: str) -> Tracker:
    """``tensorboard`` → event files in ``log_dir``; ``wandb`` → a W&B run (offline unless
    ``logger.mode`` says otherwise; a ``ConfigError`` naming ``logger.kind`` if wandb is not
    installed); ``none`` → a tracker that writes nothing."""
    if cfg.kind == "tensorboard":
        from autoresearch.tracking.tensorboard_tracker import TensorBoardTracker

        return TensorBoardTracker(Path(log_dir), run_name=run_name)
    if cfg.kind == "wandb":
        from autoresearch.tracking.wandb_tracker import WandbTracker

        return WandbTracker(project=cfg.project, run_name=run_name, log_dir=Path(log_dir), mode=cfg.mode)
    if cfg.kind == "none":
        return NullTracker()
    raise ConfigError([ConfigProblem("logger.kind", f"must be one of ['tensorboard', 'wandb', 'none'], got {cfg.kind!r}")])
