"""One experiment end to end: config in, run directory and scored result out."""

from autoresearch.result import (
    COMPLETED,
    CRASHED,
    DIVERGED,
    EARLY_STOPPED,
    INTERRUPTED,
    REFUSED,
    STATUSES,
    SUMMARY_KEYS,
    TIMEOUT,
    RunResult,
    TrialStatus,
)
from autoresearch.experiment.exit import exit_now
from autoresearch.experiment.layout import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    CURVE_FILE,
    LOG_FILE,
    METRICS_FILE,
    OVERRIDES_FILE,
    STOP_FILE,
    read_overrides,
    write_run_spec,
)

_TRAINING = ("evaluate_test", "run_experiment")  # these need torch: imported on first use


def __getattr__(name: str):
    # The campaign imports this package for its statuses and file names; torch (1.5 s) is
    # imported only by whoever actually trains or evaluates.
    if name in _TRAINING:
        from autoresearch.experiment import run

        return getattr(run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CHECKPOINT_FILE",
    "COMPLETED",
    "CONFIG_FILE",
    "CRASHED",
    "CURVE_FILE",
    "DIVERGED",
    "EARLY_STOPPED",
    "INTERRUPTED",
    "LOG_FILE",
    "METRICS_FILE",
    "OVERRIDES_FILE",
    "REFUSED",
    "STATUSES",
    "STOP_FILE",
    "SUMMARY_KEYS",
    "TIMEOUT",
    "RunResult",
    "TrialStatus",
    "evaluate_test",
    "exit_now",
    "read_overrides",
    "run_experiment",
    "write_run_spec",
]
