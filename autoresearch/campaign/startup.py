"""The campaign's first step: its workers, started before the rest of the campaign is imported.

A fork server imports torch for seconds; the campaign's own imports (the critic, the report, the
trial runner) take as long. Started from here — a module that imports neither — the two overlap
instead of queueing, and the first trial starts that much sooner.
"""

from __future__ import annotations

from pathlib import Path

from autoresearch.config import CampaignConfig, ConfigError, ConfigProblem, ExperimentConfig
from autoresearch.executor import Executor, make_executor


def lock_file(ccfg: CampaignConfig) -> Path:
    """``requirements.lock`` of the campaign: taken once at start; every trial's bundle reuses it."""
    return Path(ccfg.root) / ccfg.name / "requirements.lock"


def open_executor(cfg: ExperimentConfig) -> Executor:
    """The executor ``cfg.executor`` asks for, its workers warming up; or one ConfigError naming the
    key (Ray not installed, more GPUs per worker than the machine has, a cluster that cannot be reached)."""
    from autoresearch.provenance import LOCK_FILE_ENV

    assert cfg.campaign is not None
    where = f"conf/executor/{cfg.executor.kind}.yaml (or the command line)"
    try:
        executor = make_executor(cfg.executor, env={LOCK_FILE_ENV: str(lock_file(cfg.campaign).resolve())})
    except ImportError as err:
        raise ConfigError([ConfigProblem("executor.kind", str(err), where)]) from None
    except (ValueError, ConnectionError) as err:
        key = "executor.address" if isinstance(err, ConnectionError) else "executor.workers"
        raise ConfigError([ConfigProblem(key, str(err), where)]) from None
    executor.prewarm()
    return executor
