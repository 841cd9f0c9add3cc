"""From Hydra's composed ``DictConfig`` to a validated ``ExperimentConfig``, and back.

Hydra composes; this module types and checks. Every problem found is collected and raised once
as a ``ConfigError`` whose lines each name the key (and the file, when one is known), so a
user fixes all of them in one edit.
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import Any, Iterable, Optional

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

from autoresearch.config.schema import ConfigProblem, ExperimentConfig

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
SEARCH_SPACE_DIR = Path(__file__).resolve().parent.parent / "search_spaces"


SCHEMA_NAME = "autoresearch_schema"


def register_schema() -> None:
    """Give Hydra the typed schema (the first entry of conf/config.yaml's defaults list).

    With it, composition itself knows every key and type: ``campaign.root=...`` works even when a
    campaign file does not mention ``root``, and a typo is refused before anything runs.
    """
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name=SCHEMA_NAME, node=ExperimentConfig)


register_schema()


class ConfigError(ValueError):
    """A configuration that cannot run. ``problems`` lists every bad key found."""

    def __init__(self, problems: Iterable[ConfigProblem] | str, file: Optional[str] = None):
        if isinstance(problems, str):
            problems = [ConfigProblem("<config>", problems, file)]
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def _problem_from_omegaconf(err: OmegaConfBaseException, file: Optional[str]) -> ConfigProblem:
    key = getattr(err, "full_key", None) or "<config>"
    msg = str(err).split("\n", 1)[0]
    if isinstance(err, ConfigKeyError):
        msg = f"unknown key ({msg})"
    elif isinstance(err, ValidationError):
        msg = f"wrong type ({msg})"
    return ConfigProblem(key, msg, file)


def to_experiment_config(cfg: DictConfig | dict, *, file: Optional[str] = None) -> ExperimentConfig:
    """Type and validate a composed config. Raises ``ConfigError`` naming every bad key."""
    raw = cfg if isinstance(cfg, DictConfig) else OmegaConf.create(cfg)
    raw = OmegaConf.masked_copy(raw, [k for k in raw.keys() if k != "hydra"]) if "hydra" in raw else raw
    schema = OmegaConf.structured(ExperimentConfig)
    try:
        merged = OmegaConf.merge(schema, raw)
        OmegaConf.resolve(merged)
        typed: ExperimentConfig = OmegaConf.to_object(merged)  # type: ignore[assignment]
    except OmegaConfBaseException as err:
        raise ConfigError([_problem_from_omegaconf(err, file)]) from None
    problems = [dataclasses.replace(p, file=p.file or file) for p in typed.problems()]
    if problems:
        raise ConfigError(problems)
    return typed


def to_dict(cfg: ExperimentConfig) -> dict[str, Any]:
    """Plain, JSON-able dict of a typed config (what run directories and the store keep)."""
    return dataclasses.asdict(cfg)


def save_config(cfg: ExperimentConfig, path: Path) -> None:
    path.write_text(OmegaConf.to_yaml(OmegaConf.structured(cfg)))


def load_config(path: Path) -> ExperimentConfig:
    """Load a resolved ``config.yaml`` that a run directory keeps."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError([ConfigProblem("<file>", "no such config file", str(path))])
    return to_experiment_config(OmegaConf.load(path), file=str(path))


# Hydra keeps its initialised state in a process-wide singleton; a campaign composes from its
# main thread and its proposal thread, so composition is serialised.
_HYDRA_GLOBAL_STATE = threading.Lock()


def compose(overrides: Iterable[str] = (), config_name: str = "config") -> DictConfig:
    """Compose ``conf/config.yaml`` with Hydra's own override grammar, outside a Hydra app.

    Used by the campaign (each hypothesis is composed before it runs) and by tests.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    with _HYDRA_GLOBAL_STATE:
        if GlobalHydra.instance().is_initialized():
            GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return hydra_compose(config_name=config_name, overrides=list(overrides))


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"model": {"n_layer": 4}}`` → ``{"model.n_layer": 4}`` (hparams, search spaces, diffs)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict):
            out.update(flatten(v, key))
        else:
            out[key] = v
    return out
