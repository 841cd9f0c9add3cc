"""From Hydra's composed ``DictConfig`` to a validated ``ExperimentConfig``, and back.

Hydra composes; this module types and checks. Every problem found is collected and raised once
as a ``ConfigError`` whose lines each name the key (and the file, when one is known), so a
user fixes all of them in one edit.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import threading
import typing
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

from autoresearch.config.schema import ConfigProblem, ExperimentConfig
from autoresearch.safety import find_secret

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


def to_experiment_config(
    cfg: DictConfig | dict,
    *,
    file: Optional[str] = None,
    hydra: Any = None,
) -> ExperimentConfig:
    """Type and validate a composed config. Raises ``ConfigError`` naming every bad key.

    Every key is checked against ``ExperimentConfig`` whatever added it: a key appended with
    Hydra's ``+``/``++`` passes composition unchecked, and would otherwise be dropped silently.
    ``hydra`` (a running app's ``HydraConfig.get()``) only helps the message name the
    command-line override an unknown key came from.
    """
    raw = cfg if isinstance(cfg, DictConfig) else OmegaConf.create(cfg)
    raw = OmegaConf.masked_copy(raw, [k for k in raw.keys() if k != "hydra"]) if "hydra" in raw else raw
    unknown = unknown_keys(raw)
    if unknown:
        origin = _Origin.of_app(hydra) if hydra is not None else _Origin()
        raise ConfigError([_unknown_problem(key, hint, file, origin) for key, hint in unknown])
    schema = OmegaConf.structured(ExperimentConfig)
    try:
        merged = OmegaConf.merge(schema, raw)
        OmegaConf.resolve(merged)
        typed: ExperimentConfig = OmegaConf.to_object(merged)  # type: ignore[assignment]
    except OmegaConfBaseException as err:
        raise ConfigError([_problem_from_omegaconf(err, file)]) from None
    problems = [dataclasses.replace(p, file=p.file or file) for p in typed.problems()]
    pasted = find_secret(to_dict(typed))
    if pasted is not None:  # refused here, before a run directory, a log or the store can keep it
        problems.append(ConfigProblem(pasted, "holds what looks like a secret (an API key, token or credential): "
                                      "keep it in an environment variable and give the variable's name "
                                      "(agent.llm.api_key_env)", file))
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

    Used by the campaign (each hypothesis is composed before it runs) and by tests. Raises
    ``ConfigError`` for a key ``ExperimentConfig`` does not have (``+model.n_layers=8``), naming
    the override or file it came from; Hydra itself lets such a key through.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    overrides = list(overrides)
    with _HYDRA_GLOBAL_STATE:
        if GlobalHydra.instance().is_initialized():
            GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = hydra_compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
    choices = OmegaConf.to_container(cfg.hydra.runtime.choices) if "hydra" in cfg else {}
    with open_dict(cfg):
        del cfg["hydra"]  # what hydra_compose itself does without return_hydra_config
    unknown = unknown_keys(cfg)
    if unknown:
        origin = _Origin(overrides=overrides, choices=choices)  # type: ignore[arg-type]
        raise ConfigError([_unknown_problem(key, hint, None, origin) for key, hint in unknown])
    return cfg


# --------------------------------------------------------------------------- unknown keys
def unknown_keys(cfg: DictConfig, schema: type = ExperimentConfig) -> list[tuple[str, str]]:
    """Every key of a composed config that ``schema`` lacks: ``(dotted key, close match or "")``.

    Walks the config beside the dataclasses, so a whole unknown section is one entry and a key
    below a list-valued field is never looked into. ``hydra`` is Hydra's and is skipped.
    """
    out: list[tuple[str, str]] = []
    _walk_unknown(cfg, schema, "", out)
    return out


def _walk_unknown(node: Any, cls: type, prefix: str, out: list[tuple[str, str]]) -> None:
    hints = typing.get_type_hints(cls)
    fields = {f.name: _unwrap_optional(hints[f.name]) for f in dataclasses.fields(cls)}
    for key in node.keys() if isinstance(node, DictConfig) else ():
        name = str(key)
        if not prefix and name == "hydra":
            continue
        if name not in fields:
            close = difflib.get_close_matches(name, list(fields), n=1, cutoff=0.6)
            out.append((prefix + name, prefix + close[0] if close else ""))
            continue
        child_type = fields[name]
        if dataclasses.is_dataclass(child_type):
            child = node._get_node(name)  # no resolution: an interpolation is checked when typed
            if isinstance(child, DictConfig) and not child._is_none() and not child._is_missing():
                _walk_unknown(child, child_type, f"{prefix}{name}.", out)


def _unwrap_optional(tp: Any) -> Any:
    """``Optional[X]`` → ``X`` (``campaign`` is None outside a campaign; its keys still exist)."""
    args = typing.get_args(tp)
    if type(None) in args and len(args) == 2:
        return next(a for a in args if a is not type(None))
    return tp


_OVERRIDE_KEY = re.compile(r"^(?:~|\+\+|\+)?([^=@]+?)(?:@[^=]*)?=")


@dataclasses.dataclass(frozen=True)
class _Origin:
    """What composed a config: the overrides given and the group options they chose.

    Only overrides can bring in an unknown key: Hydra merges every config file into the typed
    schema and refuses an unknown key there itself, naming the file.
    """

    overrides: list[str] = dataclasses.field(default_factory=list)
    choices: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def of_app(cls, hydra: Any) -> "_Origin":
        return cls(overrides=list(hydra.overrides.task), choices=OmegaConf.to_container(hydra.runtime.choices))


def _unknown_problem(key: str, hint: str, file: Optional[str], origin: _Origin) -> ConfigProblem:
    message = "unknown key: ExperimentConfig has no such field"
    if hint:
        message += f" (did you mean {hint}?)"
    override = _override_origin(key, origin)
    if override is not None:
        message += f"; set by the override {override!r}"
    return ConfigProblem(key, message, file)


def _override_origin(key: str, origin: _Origin) -> Optional[str]:
    for item in origin.overrides:
        m = _OVERRIDE_KEY.match(item)
        if not m:
            continue
        name = m.group(1).strip()
        if name in origin.choices:
            continue  # +campaign=x picks a file; the key is in that file, not in the override
        if key == name or key.startswith(name + "."):
            return item
    return None


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
