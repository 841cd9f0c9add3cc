"""What a run hands back — its status and summary metrics — in the one place every room reads it.

A leaf module (standard library only): the trainer writes a ``RunResult``, the campaign and the
store record it, agents learn from its status, the report shows it. Defining the vocabulary here
keeps all of them agreeing without any of them importing another (the trainer never imports the
experiment that runs it, agents never import torch).
"""

from __future__ import annotations

import dataclasses
import enum
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional


class TrialStatus(enum.StrEnum):
    """Every state a trial can be in. Members are ``str``: they compare equal to the stored text."""

    RUNNING = "running"
    COMPLETED = "completed"
    EARLY_STOPPED = "early_stopped"  # stopped by the critic: a partial curve, not a failure
    DIVERGED = "diverged"  # NaN/inf or loss blow-up: a clear status, not a crash
    CRASHED = "crashed"
    TIMEOUT = "timeout"
    INTERRUPTED = "interrupted"  # the campaign stopped while it ran; it is run again on resume
    REFUSED = "refused"  # never started: its hypothesis was refused (agents learn from these)


COMPLETED = TrialStatus.COMPLETED
EARLY_STOPPED = TrialStatus.EARLY_STOPPED
DIVERGED = TrialStatus.DIVERGED
CRASHED = TrialStatus.CRASHED
TIMEOUT = TrialStatus.TIMEOUT
INTERRUPTED = TrialStatus.INTERRUPTED
REFUSED = TrialStatus.REFUSED
RUNNING = TrialStatus.RUNNING
STATUSES = tuple(TrialStatus)
# A finished trial row ends in one of these; a run process itself never reports INTERRUPTED.
FINISHED_STATUSES = (COMPLETED, EARLY_STOPPED, DIVERGED, CRASHED, TIMEOUT, INTERRUPTED)
FAILED_STATUSES = (CRASHED, TIMEOUT, DIVERGED)  # the trial ran and left no usable objective value
# A run started early on an idle worker and stopped because its job no longer needed it is stored
# INTERRUPTED (a job that asks for it later trains it again), its error saying why after this prefix.
CANCELLED_PREFIX = "cancelled: "


def cancelled_error(reason: str) -> str:
    """The stored error of a run the campaign cancelled: ``reason`` says why it was not needed."""
    return CANCELLED_PREFIX + reason


def is_cancelled(status: str, error: str | None) -> bool:
    """Whether a stored trial is a run the campaign cancelled (not a failure, not a kill)."""
    return status == INTERRUPTED and (error or "").startswith(CANCELLED_PREFIX)

# The summary block printed at the end of every run, in this order.
SUMMARY_KEYS = (
    "val_bpb",
    "training_seconds",
    "total_seconds",
    "peak_memory_mb",
    "mfu_percent",
    "total_tokens_M",
    "num_steps",
    "num_params_M",
    "depth",
)


@dataclass(kw_only=True)
class RunResult:
    """Summary of one training run; ``metrics.json`` in its run directory holds exactly this."""

    status: str
    val_bpb: float = float("nan")
    training_seconds: float = 0.0
    # Steps trained off the seconds budget's clock (``trainer.untimed_warmup_steps``): their updates
    # count, their first-call costs do not. Kept so an accounting of the slot's time can tell them apart.
    warmup_steps: int = 0
    warmup_seconds: float = 0.0
    eval_seconds: float = 0.0  # validation scoring, excluded from the seconds budget
    total_seconds: float = 0.0
    peak_memory_mb: float = 0.0
    mfu_percent: float = 0.0
    total_tokens_M: float = 0.0
    num_steps: int = 0
    num_params_M: float = 0.0
    depth: int = 0
    tokens_per_second: float = 0.0
    final_train_loss: float = float("nan")
    progress: float = 0.0  # fraction of the budget consumed (1.0 unless stopped early)
    test_bpb: Optional[float] = None  # only from an explicit final evaluation
    test_eval_seconds: Optional[float] = None  # what that evaluation took (campaign accounting)
    device: str = "cpu"
    seed: int = 0
    error: Optional[str] = None
    interventions: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> str:
        """``key: value`` lines in the shape users grep (``grep '^val_bpb:' run.log``)."""
        lines = ["---"]
        for key in SUMMARY_KEYS:
            value = getattr(self, key)
            lines.append(f"{key + ':':<20}{value:.6f}" if isinstance(value, float) else f"{key + ':':<20}{value}")
        lines.append(f"{'status:':<20}{self.status}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-able values (the status as its text, not the enum member)."""
        out = dataclasses.asdict(self)
        out["status"] = str(self.status)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunResult":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2, default=float))

    @classmethod
    def load(cls, path: Path) -> "RunResult":
        return cls.from_dict(json.loads(Path(path).read_text()))
