"""A run's status vocabulary and ``RunResult``, as this package has always exported them.

Defined once in the leaf module ``autoresearch.result`` (the trainer and the store read it from
there without importing this package); re-exported here for callers of ``autoresearch.experiment``.
"""

from autoresearch.result import (  # noqa: F401
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
