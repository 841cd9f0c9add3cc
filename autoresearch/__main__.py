"""``python -m autoresearch``: one baseline experiment; ``+campaign=NAME``: the autonomous loop.

A thin Hydra app. Composition and the override grammar are Hydra's; typing and validation are
``autoresearch.config``'s; everything else lives in the packages this dispatches to.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from autoresearch.config import ConfigError, compose, renamed_overrides, to_experiment_config
from autoresearch.experiment import exit_now
from autoresearch.safety import install_log_safety, scrub_text, terminal_text

log = logging.getLogger("autoresearch")


def _fail(err: Exception, *, logged: bool = True) -> None:
    """One clear line per problem and a non-zero exit: no wall of traceback for bad input.

    ``logged=False`` outside the Hydra app, where no run log exists and logging would only echo.
    """
    for line in str(err).splitlines():
        if logged:
            log.error("%s", line)
        print(f"error: {terminal_text(scrub_text(line))}", file=sys.stderr)
    sys.exit(2)


_composed = False  # set once Hydra has composed the config and handed it over


def main() -> None:
    """The Hydra app, with old key names refused by their new names.

    Hydra refuses a renamed key itself (``critic.early_stopping.strategy=curve``, or a campaign
    file still saying ``max_wall_seconds``) without saying what it is called now: overrides are
    checked before Hydra runs, and a file Hydra refused is explained after its message.
    """
    overrides = [a for a in sys.argv[1:] if not a.startswith("-")]
    refused = renamed_overrides(overrides)
    if refused:
        _fail(ConfigError(refused), logged=False)
    try:
        _app()
    except SystemExit as exit_:
        if exit_.code == 1 and not _composed:
            _explain_refused_composition(overrides)
        raise


def _explain_refused_composition(overrides: list[str]) -> None:
    """Compose again outside Hydra's app: ``compose`` names a renamed key's new name and its file."""
    try:
        compose(overrides)
    except ConfigError as err:
        _fail(err, logged=False)
    except Exception:  # noqa: BLE001 - Hydra has already reported the error; nothing to add
        pass


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def _app(cfg: DictConfig) -> None:
    global _composed
    _composed = True
    # Hydra has set up the handlers by now: from here on no record can carry a key or forge a line.
    install_log_safety()
    hydra_cfg = HydraConfig.get()
    try:
        experiment = to_experiment_config(cfg, hydra=hydra_cfg)
    except ConfigError as err:
        _fail(err)
    overrides = list(hydra_cfg.overrides.task)
    if experiment.campaign is not None:
        from autoresearch.campaign.startup import open_executor
        from autoresearch.store import SecretInConfigError

        try:
            # The workers first: their imports overlap the campaign's own, a few seconds each.
            executor = open_executor(experiment)
            from autoresearch.campaign import run_campaign

            run_campaign(experiment, overrides, executor=executor)
        except (ConfigError, SecretInConfigError) as err:
            _fail(err)
        return
    from autoresearch.experiment import LOG_FILE, run_experiment
    from autoresearch.train import tune_allocator

    tune_allocator()

    run_dir = Path(hydra_cfg.runtime.output_dir)
    try:
        result = run_experiment(experiment, run_dir, overrides=overrides)
    except (ConfigError, FileNotFoundError) as err:
        _fail(err)
    summary = result.summary()
    with open(run_dir / LOG_FILE, "a") as fh:
        fh.write(summary + "\n")
    print(summary)
    if result.status != "completed":
        sys.exit(1)


if __name__ == "__main__":
    main()
    # Everything is on disk (store closed, report written). Tearing down torch, Ax and transformers
    # module by module adds about a second to every run for nothing; errors never reach this line
    # (Hydra exits through SystemExit), so they keep the normal exit.
    exit_now(0)
