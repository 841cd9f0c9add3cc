"""Per-run TensorBoard scalars: ``train/loss``, ``val/bpb``, ``lr``, ``tokens_per_s``, ``sharpness``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

from autoresearch.tracking.base import scalar_tags
from autoresearch.tracking.hparams import write_session

log = logging.getLogger(__name__)


class TensorBoardTracker:
    """Writes one run's curves into ``log_dir`` (a run's ``tb/``) with torch's SummaryWriter.

    ``flush_secs`` is short so a live ``tensorboard`` (or the campaign's view) sees a trial's
    curve while it trains, not two minutes later.
    """

    def __init__(self, log_dir: Path, *, run_name: str = "", flush_secs: int = 10):
        from torch.utils.tensorboard import SummaryWriter

        self.log_dir = Path(log_dir)
        self.run_name = run_name or self.log_dir.name
        self._writer = SummaryWriter(log_dir=str(self.log_dir), flush_secs=flush_secs)
        self._closed = False

    def log_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
        if self._closed:
            return
        for tag, value in scalar_tags(scalars).items():
            self._writer.add_scalar(tag, value, int(step))

    def log_hparams(self, hparams: Mapping[str, Any], metrics: Mapping[str, Any]) -> None:
        """This run as one HParams session in its own log directory (a campaign summary of the
        same directory later replaces it; see ``tracking.hparams``)."""
        status = str(metrics.get("status", "completed"))
        write_session(
            self.log_dir,
            hparams,
            metrics,
            trial_id=self.run_name,
            status="success" if status in ("completed", "early_stopped") else status,
        )

    def close(self) -> None:
        if not self._closed:
            self._writer.close()
            self._closed = True

    def __enter__(self) -> "TensorBoardTracker":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
