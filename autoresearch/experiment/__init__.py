"""One experiment end to end: config in, run directory and scored result out."""

from autoresearch.experiment.result import (
    COMPLETED,
    CRASHED,
    DIVERGED,
    EARLY_STOPPED,
    REFUSED,
    STATUSES,
    SUMMARY_KEYS,
    TIMEOUT,
    RunResult,
)
from autoresearch.experiment.run import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    CURVE_FILE,
    LOG_FILE,
    METRICS_FILE,
    OVERRIDES_FILE,
    STOP_FILE,
    evaluate_test,
    read_overrides,
    run_experiment,
    write_run_spec,
)

__all__ = [
    "CHECKPOINT_FILE",
    "COMPLETED",
    "CONFIG_FILE",
    "CRASHED",
    "CURVE_FILE",
    "DIVERGED",
    "EARLY_STOPPED",
    "LOG_FILE",
    "METRICS_FILE",
    "OVERRIDES_FILE",
    "REFUSED",
    "STATUSES",
    "STOP_FILE",
    "SUMMARY_KEYS",
    "TIMEOUT",
    "RunResult",
    "evaluate_test",
    "read_overrides",
    "run_experiment",
    "write_run_spec",
]
