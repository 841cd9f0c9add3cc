"""From Hydra's composed ``DictConfig`` to a validated ``ExperimentConfig``, and back.

Hydra composes; this module types and checks. Every problem found is collected and raised once
as a ``ConfigError`` whose lines each name the key (and the file, when one is known), so a
user fixes all of them in one edit.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
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


@functools.lru_cache(maxsize=1)
def structured_schema() -> DictConfig:
    """``ExperimentConfig`` as a structured DictConfig, built once: building it costs a forked trial
    ~30 ms, and ``OmegaConf.merge`` copies its first argument, so the cached one is never changed."""
    return OmegaConf.structured(ExperimentConfig)


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
    try:
        merged = OmegaConf.merge(structured_schema(), raw)
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
    the override or file it came from; Hydra itself lets such a key through. A renamed or removed
    key (``RENAMED_KEYS``, ``REMOVED_KEYS``) is refused with its new name, whether an override or
    a config file (``conf/campaign/mine.yaml``) holds it.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import ConfigCompositionException

    overrides = list(overrides)
    refused = renamed_overrides(overrides)
    if refused:
        raise ConfigError(refused)
    with _HYDRA_GLOBAL_STATE:
        if GlobalHydra.instance().is_initialized():
            GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            try:
                cfg = hydra_compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
            except ConfigCompositionException as err:
                renamed = renamed_in_composition(err)
                if not renamed:
                    raise
                raise ConfigError(renamed) from None
    choices = OmegaConf.to_container(cfg.hydra.runtime.choices) if "hydra" in cfg else {}
    with open_dict(cfg):
        del cfg["hydra"]  # what hydra_compose itself does without return_hydra_config
    unknown = unknown_keys(cfg)
    if unknown:
        origin = _Origin(overrides=overrides, choices=choices)  # type: ignore[arg-type]
        raise ConfigError([_unknown_problem(key, hint, None, origin) for key, hint in unknown])
    return cfg


# --------------------------------------------------------------------------- renamed keys
# Old dotted key -> its new name. One word per idea (docs/ARCHITECTURE.md, "Configuration
# names"): a selector of an implementation is ``kind``, a duration ends in ``_s``, and a warm-up
# says whether it is a fraction of the budget or a count of untimed steps. An old key is refused,
# never translated, so a config means one thing wherever it is read (a saved run's config.yaml
# included: rename the key it names and it loads).
RENAMED_KEYS: dict[str, str] = {
    "data.source": "data.kind",
    "agent.partner": "agent.partner_kind",
    "critic.test": "critic.test.kind",
    "critic.alpha": "critic.test.alpha",
    "critic.early_stopping.strategy": "critic.early_stopping.kind",
    "knowledge.embedder": "knowledge.embedder.kind",
    "knowledge.embedding_model": "knowledge.embedder.model",
    "optim.warmup": "optim.warmup_fraction",
    "optim.cooldown": "optim.cooldown_fraction",
    "trainer.warmup_steps": "trainer.untimed_warmup_steps",
    "campaign.max_wall_seconds": "campaign.max_wall_s",
}

# Old dotted key -> why it is gone (a key nothing read, whose value was silently ignored).
REMOVED_KEYS: dict[str, str] = {
    "campaign.objective": "was removed: nothing read it; the objective is always val_bpb, lower is better",
}


def renamed_key(key: str, *, section: bool = False) -> Optional[str]:
    """What became of a renamed or removed key (or of a key below one), else None.

    ``"was renamed optim.warmup_fraction"`` for the old key itself, ``"campaign.objective was
    removed: ..."`` for a key below a removed one. ``knowledge.embedder`` is both an old key (a
    string) and a new section: a key below the section (``knowledge.embedder.kind``) is a new name,
    and so is the key itself when it holds a mapping (``section``).
    """
    for old, new in RENAMED_KEYS.items():
        if key == old and not (section and new.startswith(old + ".")):
            return f"was renamed {new}"
        if key.startswith(old + ".") and not new.startswith(old + "."):
            return f"{old} was renamed {new} (so: {new}{key[len(old):]})"
    for old, why in REMOVED_KEYS.items():
        if key == old:
            return why
        if key.startswith(old + "."):
            return f"{old} {why}"
    return None


def renamed_overrides(overrides: Iterable[str]) -> list[ConfigProblem]:
    """A problem for each override (``key=v``, ``+key=v``, ``++key=v``, ``~key``) naming an old key.

    Checked before Hydra composes: Hydra refuses such an override itself, without the new name.
    """
    problems = []
    for item in overrides:
        m = _OVERRIDE_KEY.match(item) or _DELETE_KEY.match(item)
        key = m.group(1).strip() if m else ""
        section = item.split("=", 1)[-1].lstrip().startswith("{")  # knowledge.embedder={kind: hashing}
        message = renamed_key(key, section=section) if key else None
        if message is not None:
            problems.append(ConfigProblem(key, f"{message}; set by the override {item!r}"))
    return problems


def renamed_in_composition(err: BaseException) -> list[ConfigProblem]:
    """The renames behind Hydra's refusal of a config file, naming the file; [] when there are none.

    Hydra merges each file into the typed schema and refuses a key the schema lacks with its own
    message ("In 'campaign/mine': ... full_key: campaign.max_wall_seconds", or no key at all when
    a string stands where a section now is). The file's keys are read again here to say what each
    old one is called now.
    """
    where = re.match(r"In '([^']+)'", str(err))
    if where is None:
        return []
    name = where.group(1)
    path = CONF_DIR / f"{name}.yaml"
    if not path.is_file():  # a file on another search path: the key Hydra names is all there is
        key = _full_key(err)
        message = renamed_key(key) if key else None
        return [ConfigProblem(key, message, f"{name}.yaml")] if key and message else []
    text = path.read_text()
    node = OmegaConf.create(text)
    package = re.search(r"^#\s*@package\s+(\S+)", text, re.M)  # Hydra's header; the group by default
    where_to = package.group(1) if package else "_group_"
    if where_to == "_group_":
        where_to = name.rsplit("/", 1)[0].replace("/", ".") if "/" in name else ""
    prefix = "" if where_to in ("", "_global_") else where_to + "."
    keys = _dotted_keys(OmegaConf.to_container(node, resolve=False), prefix) if isinstance(node, DictConfig) else []
    problems: list[ConfigProblem] = []
    for key, section in keys:
        message = renamed_key(key, section=section)
        if message is not None and not any(key.startswith(p.key + ".") for p in problems):
            problems.append(ConfigProblem(key, message, str(path)))
    return problems


def _full_key(err: BaseException) -> str:
    cause: Optional[BaseException] = err
    while cause is not None:
        if getattr(cause, "full_key", None):
            return str(cause.full_key)  # type: ignore[attr-defined]
        cause = cause.__cause__ or cause.__context__
    return ""


def _dotted_keys(node: Any, prefix: str) -> list[tuple[str, bool]]:
    """Every key of a nested mapping, sections included, and whether it holds a mapping."""
    out: list[tuple[str, bool]] = []
    if isinstance(node, Mapping):
        for k, v in node.items():
            if str(k) == "defaults" and not prefix:
                continue
            out.append((f"{prefix}{k}", isinstance(v, Mapping)))
            out += _dotted_keys(v, f"{prefix}{k}.")
    return out


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
            elif not isinstance(child, DictConfig) and renamed_key(prefix + name) is not None:
                out.append((prefix + name, ""))  # an old scalar key whose name is now a section


def _unwrap_optional(tp: Any) -> Any:
    """``Optional[X]`` → ``X`` (``campaign`` is None outside a campaign; its keys still exist)."""
    args = typing.get_args(tp)
    if type(None) in args and len(args) == 2:
        return next(a for a in args if a is not type(None))
    return tp


_OVERRIDE_KEY = re.compile(r"^(?:~|\+\+|\+)?([^=@]+?)(?:@[^=]*)?=")
_DELETE_KEY = re.compile(r"^~([^=@]+)$")  # ~key, without a value


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
    message = renamed_key(key)
    if message is None:
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
