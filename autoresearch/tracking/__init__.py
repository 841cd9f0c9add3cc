"""Scalar and hyperparameter logging: TensorBoard, Weights & Biases, or nothing.

A run gets a tracker from ``make_tracker(cfg.logger, run_dir / "tb", run_name)`` and calls
``log_scalars(step, curve_row)`` / ``log_hparams(flat_hparams, metrics)`` / ``close()``.
A campaign calls ``log_campaign_hparams(campaign_dir, trials)`` so that
``tensorboard --logdir <campaign_dir>`` compares every trial on ``hparam/val_bpb``.
"""

from autoresearch.tracking.base import SCALAR_TAGS, NullTracker, Tracker, flatten_hparams
from autoresearch.tracking.factory import make_tracker
from autoresearch.tracking.hparams import log_campaign_hparams
from autoresearch.tracking.tensorboard_tracker import TensorBoardTracker
from autoresearch.tracking.wandb_tracker import WandbTracker

__all__ = [
    "SCALAR_TAGS",
    "NullTracker",
    "TensorBoardTracker",
    "Tracker",
    "WandbTracker",
    "flatten_hparams",
    "log_campaign_hparams",
    "make_tracker",
]
