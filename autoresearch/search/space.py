"""Search spaces: which config keys a campaign may change, over which values, when and together.

A search space is a YAML file in ``search_spaces/`` checked twice when it is loaded: first
against ``search_space.schema.json`` (shape), then against ``ExperimentConfig`` and itself
(every key exists and may be searched, value types match the config, bounds make sense, a
``depends_on`` parent can actually switch its child on, constraints only read config keys).
Every problem is collected and reported at once, each line naming the file and the JSON path
(``search_spaces/x.yaml: parameters.model.rope_base.bounds: ...``), so one edit fixes them all.

The loaded ``SearchSpace`` is immutable and is the allowlist every hypothesis is checked against
(``autoresearch.search.validate``); agents sample from it and Ax is configured from it.
"""

from __future__ import annotations

import dataclasses
import graphlib
import heapq
import json
import logging
import math
import random
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal, Optional

import yaml

from autoresearch.config import SEARCH_SPACE_DIR
from autoresearch.search.constraints import Constraint, ConstraintEvalError, ConstraintSyntaxError
from autoresearch.search.canonical import INT_MAX, INT_MIN, SIGNIFICANT_DIGITS, canonical_value, same_value
from autoresearch.search.hypothesis import Scalar
from autoresearch.search.keys import ValueType, config_keys, forbidden_reason, unknown_key_hint

log = logging.getLogger(__name__)

SCHEMA_PATH = Path(__file__).resolve().parent / "search_space.schema.json"
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_SAMPLE_TRIES = 1000  # rejection sampling against the constraints

ParamType = Literal["range", "choice", "fixed"]


class SearchSpaceError(ValueError):
    """A search space that cannot be used. ``problems`` holds one ``file: json.path: message`` per line."""

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


# --------------------------------------------------------------------------- parameter
@dataclass(frozen=True, kw_only=True)
class Parameter:
    """One searchable config key and its domain.

    ``bounds`` (range), ``values`` (choice) and ``value`` (fixed) hold values already cast to
    ``value_type``, which always equals the type of the key in ``ExperimentConfig``.
    ``depends_on`` maps a parent key to the parent values that switch this parameter on; several
    parents must all agree. Treat the dict as read-only.
    """

    name: str
    type: ParamType
    value_type: ValueType
    bounds: Optional[tuple[float, float]] = None
    log_scale: bool = False
    values: tuple[Scalar, ...] = ()
    ordered: bool = False
    value: Optional[Scalar] = None
    depends_on: dict[str, tuple[Scalar, ...]] = field(default_factory=dict)
    description: str = ""

    def cast(self, value: Any) -> Scalar:
        """``value`` as this parameter's type, or ``TypeError`` saying what was expected.

        Lenient only where nothing can be lost: an int-valued float (3.0) is an int and an int is
        a float. Strings are never parsed into numbers ("3" is refused for an int).
        """
        return cast_value(self.value_type, value)

    def check(self, value: Scalar) -> Optional[str]:
        """None when an already-cast ``value`` lies in the domain, else what is wrong (names the key).

        Values and bounds are both canonical (``cast`` rounds floats to 6 significant digits), so
        the bounds are exact: no tolerance lets a value a hair outside them through.
        """
        if self.type == "fixed":
            if same_value(value, self.value):
                return None
            return f"{self.name} is fixed at {self.value!r} in this search space"
        if self.type == "choice":
            if any(same_value(value, v) for v in self.values):
                return None
            return f"{self.name}={value!r} is not one of {list(self.values)}"
        lo, hi = self.bounds  # type: ignore[misc]
        if lo <= value <= hi:  # type: ignore[operator]
            return None
        scale = ", log scale" if self.log_scale else ""
        return f"{self.name}={value!r} is outside [{_num(lo)}, {_num(hi)}]{scale}"

    def to_dict(self) -> dict[str, Any]:
        """The YAML form of this parameter (JSON-able), e.g. for prompts and the store."""
        out: dict[str, Any] = {"type": self.type, "value_type": self.value_type}
        if self.type == "range":
            out["bounds"] = list(self.bounds)  # type: ignore[arg-type]
            out["log_scale"] = self.log_scale
        elif self.type == "choice":
            out["values"] = list(self.values)
            out["ordered"] = self.ordered
        else:
            out["value"] = self.value
        if self.depends_on:
            out["depends_on"] = {k: list(v) for k, v in self.depends_on.items()}
        if self.description:
            out["description"] = self.description
        return out


def cast_value(value_type: str, value: Any) -> Scalar:
    """Cast one JSON scalar to ``value_type`` (see ``Parameter.cast``); ``TypeError`` if it is not one.

    The result is canonical (``autoresearch.search.canonical``): a float keeps 6 significant
    digits and ``-0.0`` is ``0.0``; an integer must fit in 64 bits (SQLite's INTEGER).
    """
    if value_type == "bool":
        if isinstance(value, bool):
            return value
        raise TypeError(f"must be true or false, got {_kind(value)}")
    if value_type == "str":
        if isinstance(value, str):
            return value
        raise TypeError(f"must be a string, got {_kind(value)}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"must be {'an integer' if value_type == 'int' else 'a number'}, got {_kind(value)}")
    if isinstance(value, int) and not INT_MIN <= value <= INT_MAX:
        raise TypeError("must be a number between -2**63 and 2**63-1")
    if isinstance(value, float) and not math.isfinite(value):
        raise TypeError("must be a finite number")
    if value_type == "int":
        if isinstance(value, float) and not value.is_integer():
            raise TypeError(f"must be an integer, got {value!r}")
        if not INT_MIN <= value <= INT_MAX:
            raise TypeError("must be an integer between -2**63 and 2**63-1")
        return int(value)
    return canonical_value(float(value))


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int) and not INT_MIN <= value <= INT_MAX:
        return f"an integer of {value.bit_length()} bits"  # repr of a huge int is slow, or raises
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if value is None:
        return "null"
    return f"a {type(value).__name__}"


def _num(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


# --------------------------------------------------------------------------- space
@dataclass(frozen=True, kw_only=True)
class SearchSpace:
    """A validated search space. Build with ``SearchSpace.load(name_or_path)`` or ``from_dict``.

    ``parameters`` keeps the file's order. All methods take ``values`` / ``base`` as *flattened*
    configs (``{"model.n_layer": 4, ...}``, as ``autoresearch.config.flatten`` makes them).
    """

    name: str
    path: Optional[Path] = None
    description: str = ""
    parameters: dict[str, Parameter]
    constraints: tuple[str, ...] = ()
    _checks: tuple[Constraint, ...] = field(default=(), repr=False, compare=False)

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, name_or_path: str | Path) -> "SearchSpace":
        """Load ``search_spaces/<name>.yaml`` (a bare name) or a YAML file at a path.

        Raises ``SearchSpaceError`` listing every problem, each naming the file and JSON path.
        """
        path = _resolve(name_or_path)
        shown = _display(path)
        try:
            data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506 (safe loader)
        except yaml.YAMLError as err:
            raise SearchSpaceError(f"{shown}: (yaml): {' '.join(str(err).split())}") from None
        return cls.from_dict(data, source=shown, path=path)

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "<search space>", path: Optional[Path] = None) -> "SearchSpace":
        """Validate plain data (the parsed YAML) and build the space; ``source`` prefixes every error."""
        shape = _schema_problems(data)
        found = [(json_path(parts), msg) for parts, msg in shape]
        broken = {parts[1] for parts, _ in shape if len(parts) >= 2 and parts[0] == "parameters"}
        space = None
        if all(len(parts) >= 2 and parts[0] == "parameters" for parts, _ in shape):
            # The shape is right apart from some parameters: check the others too, so that one
            # round of edits fixes every problem in the file.
            rest = {**data, "parameters": {k: v for k, v in data["parameters"].items() if k not in broken}}
            space = _build(rest, path, found)
        if found:
            raise SearchSpaceError([f"{source}: {where}: {msg}" for where, msg in found])
        log.debug("loaded search space %s (%d parameters) from %s", space.name, len(space.parameters), source)
        return space  # type: ignore[return-value]

    # ------------------------------------------------------------------ structure
    def is_active(self, key: str, values: dict[str, Any]) -> bool:
        """Whether ``key`` matters given a full flattened config (base plus overrides).

        A parameter is active when every ``depends_on`` parent holds one of the listed values and
        each parent that is itself a parameter is active too. Keys without conditions are active.
        """
        param = self.parameters.get(key)
        if param is None or not param.depends_on:
            return True
        for parent, allowed in param.depends_on.items():
            if parent not in values:
                raise KeyError(f"{key} depends on {parent}, which the given config does not hold")
            if not any(same_value(values[parent], a) for a in allowed):
                return False
            if parent in self.parameters and not self.is_active(parent, values):
                return False
        return True

    def dependency_edges(self) -> list[tuple[str, str]]:
        """Every ``(parent, child)`` pair from ``depends_on``, in file order."""
        return [(parent, key) for key, p in self.parameters.items() for parent in p.depends_on]

    def fixed_values(self) -> dict[str, Scalar]:
        """The values ``fixed`` parameters pin for every trial of this space."""
        return {k: p.value for k, p in self.parameters.items() if p.type == "fixed"}  # type: ignore[misc]

    def effective_base(self, base: dict[str, Any]) -> dict[str, Any]:
        """``base`` with the fixed parameters applied: the config every trial here starts from."""
        return {**base, **self.fixed_values()}

    def defaults(self, base: dict[str, Any]) -> dict[str, Any]:
        """The base config's value of each parameter (what a hypothesis leaves unchanged)."""
        missing = [k for k in self.parameters if k not in base]
        if missing:
            raise KeyError(f"the base config has no value for {', '.join(missing)}; pass a flattened full config")
        return {k: base[k] for k in self.parameters}

    # ------------------------------------------------------------------ constraints
    def check_constraints(self, values: dict[str, Any]) -> list[str]:
        """One sentence per constraint that ``values`` (a full flattened config) breaks; empty if none."""
        broken = []
        for c in self._checks:
            shown = ", ".join(f"{n}={values.get(n)!r}" for n in c.names)
            try:
                ok = c.evaluate(values)
            except ConstraintEvalError as err:
                broken.append(f"constraint '{c.source}' cannot be evaluated with {shown}: {err}")
                continue
            if not ok:
                broken.append(f"constraint '{c.source}' does not hold for {shown}")
        return broken

    # ------------------------------------------------------------------ sampling
    def sample(self, rng: random.Random, base: dict[str, Any]) -> dict[str, Scalar]:
        """A random point: a value for every *active* parameter, satisfying every constraint.

        Fixed parameters are included with their pinned value. Ranges are sampled uniformly (in
        log space when ``log_scale``); floats keep 4 significant digits so that reports stay
        readable. Raises ``SearchSpaceError`` if no valid point turns up after many tries.
        """
        eff = self.effective_base(base)
        order = self.topological_order()
        for _ in range(_SAMPLE_TRIES):
            point: dict[str, Scalar] = {}
            merged = dict(eff)
            for key in order:
                if not self.is_active(key, merged):
                    continue
                point[key] = merged[key] = _draw(self.parameters[key], rng)
            if not self.check_constraints(merged):
                return point
        raise SearchSpaceError(
            f"search space {self.name}: no point satisfying {list(self.constraints)} found in {_SAMPLE_TRIES} draws"
        )

    def topological_order(self) -> list[str]:
        """Parameters with every in-space parent before its children, else in file order.

        Each step takes the earliest parameter in the file whose parents are all placed, so a
        file already written parents-first keeps its order. Loading refuses cycles, so the order
        always exists.
        """
        sorter = graphlib.TopologicalSorter(
            {key: [p for p in param.depends_on if p in self.parameters] for key, param in self.parameters.items()}
        )
        sorter.prepare()
        position = {key: i for i, key in enumerate(self.parameters)}
        ready: list[tuple[int, str]] = []
        out: list[str] = []
        while sorter.is_active():
            for key in sorter.get_ready():
                heapq.heappush(ready, (position[key], key))
            _, key = heapq.heappop(ready)
            out.append(key)
            sorter.done(key)
        return out

    def to_dict(self) -> dict[str, Any]:
        """The space as plain JSON-able data (same shape as the YAML), for prompts and the store."""
        return {
            "name": self.name,
            "description": self.description,
            "parameters": {k: p.to_dict() for k, p in self.parameters.items()},
            "constraints": list(self.constraints),
        }


def _draw(p: Parameter, rng: random.Random) -> Scalar:
    if p.type == "fixed":
        return p.value  # type: ignore[return-value]
    if p.type == "choice":
        return rng.choice(p.values)
    lo, hi = p.bounds  # type: ignore[misc]
    if p.log_scale:
        x = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    else:
        x = rng.uniform(lo, hi)
    if p.value_type == "int":
        return int(min(max(round(x), lo), hi))
    return min(max(float(f"{x:.4g}"), lo), hi)


# --------------------------------------------------------------------------- files
def _resolve(name_or_path: str | Path) -> Path:
    text = str(name_or_path)
    is_name = isinstance(name_or_path, str) and _NAME.match(text) is not None
    path = SEARCH_SPACE_DIR / f"{text}.yaml" if is_name else Path(text).expanduser()
    if not is_name and not path.is_file() and isinstance(name_or_path, str) and "/" not in text:
        path = SEARCH_SPACE_DIR / text  # "rope_ablation.yaml": a file name in search_spaces/
    if not path.is_file():
        available = sorted(p.stem for p in SEARCH_SPACE_DIR.glob("*.yaml"))
        what = f"no search space named {text!r}" if is_name else "no such search-space file"
        raise SearchSpaceError(f"{_display(path)}: (file): {what}; shipped spaces: {', '.join(available) or 'none'}")
    return path


def _display(path: Path) -> str:
    """The path as a user would type it: relative to the working directory when inside it."""
    try:
        return str(path.absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.safe_load`` that refuses a key given twice instead of keeping the last silently."""


def _unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


# --------------------------------------------------------------------------- checks
@cache
def _schema_validator() -> Any:
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def json_path(parts: Any) -> str:
    """``["parameters", "model.rope_base", "bounds", 0]`` → ``parameters.model.rope_base.bounds[0]``."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _schema_problems(data: Any) -> list[tuple[tuple[Any, ...], str]]:
    found = []
    for err in _schema_validator().iter_errors(data):
        msg = err.message
        if err.validator == "type" and isinstance(err.instance, str) and _looks_numeric(err.instance):
            msg += f" (YAML reads {err.instance} as text: write it with a decimal point, e.g. 1.0e6, or in full)"
        found.append((tuple(err.absolute_path), msg))
    return sorted(found, key=lambda f: (json_path(f[0]), f[1]))


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _build(data: dict[str, Any], path: Optional[Path], problems: list[tuple[str, str]]) -> Optional[SearchSpace]:
    """Check the schema-valid ``data`` against ExperimentConfig and itself; append problems."""
    keys = config_keys()
    params: dict[str, Parameter] = {}
    raw_params: dict[str, dict[str, Any]] = data["parameters"]
    for key, spec in raw_params.items():
        where = f"parameters.{key}"
        param = _build_parameter(key, spec, where, keys, problems)
        if param is not None:
            params[key] = param
    for key, param in list(params.items()):
        depends = _build_depends(key, raw_params[key].get("depends_on", {}), params, keys, problems)
        params[key] = dataclasses.replace(param, depends_on=depends)
    _check_cycles(params, problems)

    checks = []
    for i, source in enumerate(data.get("constraints", [])):
        try:
            checks.append(Constraint.parse(source, keys))
        except ConstraintSyntaxError as err:
            problems.append((f"constraints[{i}]", str(err)))
    if problems:
        return None
    return SearchSpace(
        name=data["name"],
        path=path,
        description=data.get("description", ""),
        parameters=params,
        constraints=tuple(c.source for c in checks),
        _checks=tuple(checks),
    )


def _build_parameter(
    key: str, spec: dict[str, Any], where: str, keys: dict[str, Optional[str]], problems: list[tuple[str, str]]
) -> Optional[Parameter]:
    reason = forbidden_reason(key)
    if reason is not None:
        problems.append((where, f"may not be searched: {reason}"))
        return None
    if key not in keys:
        below = [k for k in keys if k.startswith(key + ".")]
        if below:
            examples = ", ".join(below[:4])
            problems.append((where, f"is a config section, not a key; name one of its keys ({examples}, ...)"))
        else:
            problems.append((where, f"is not a key of ExperimentConfig{unknown_key_hint(key)}"))
        return None
    field_type = keys[key]
    if field_type is None:
        problems.append((where, "holds a list in ExperimentConfig; only single values can be searched"))
        return None
    kind: ParamType = spec["type"]
    n_before = len(problems)
    value_type = spec.get("value_type", field_type)
    if value_type != field_type:
        problems.append((f"{where}.value_type", f"must be {field_type}: {key} is a {field_type} in ExperimentConfig"))
    not_allowed = {
        "range": ("values", "value", "ordered"),
        "choice": ("bounds", "log_scale", "value"),
        "fixed": ("bounds", "log_scale", "values", "ordered", "depends_on"),
    }[kind]
    for extra in not_allowed:
        if extra in spec:
            problems.append((f"{where}.{extra}", f"does not apply to a {kind} parameter"))

    bounds: Optional[tuple[float, float]] = None
    values: tuple[Scalar, ...] = ()
    value: Optional[Scalar] = None
    if kind == "range":
        if field_type not in ("int", "float"):
            msg = f"a range needs a numeric key and {key} is a {field_type}; use type: choice"
            problems.append((f"{where}.type", msg))
        else:
            bounds = _build_bounds(spec, field_type, f"{where}.bounds", problems)
    elif kind == "choice":
        values = tuple(_cast_listed(spec["values"], field_type, f"{where}.values", problems))
        if len(set(map(repr, values))) < len(values):
            problems.append((f"{where}.values", "lists the same value twice"))
    else:
        value = _cast_one(spec["value"], field_type, f"{where}.value", problems)
    if len(problems) > n_before:
        return None
    return Parameter(
        name=key,
        type=kind,
        value_type=field_type,  # type: ignore[arg-type]
        bounds=bounds,
        log_scale=bool(spec.get("log_scale", False)),
        values=values,
        ordered=bool(spec.get("ordered", field_type in ("int", "float"))),
        value=value,
        description=spec.get("description", ""),
    )


def _build_bounds(
    spec: dict[str, Any], field_type: str, where: str, problems: list[tuple[str, str]]
) -> Optional[tuple[float, float]]:
    lo, hi = spec["bounds"]
    if field_type == "int" and not all(isinstance(b, int) or float(b).is_integer() for b in (lo, hi)):
        problems.append((where, f"an int range needs whole-number bounds, got [{lo}, {hi}]"))
        return None
    if not lo < hi:
        problems.append((where, f"lower bound {lo} must be below upper bound {hi} (use type: fixed for one value)"))
        return None
    if spec.get("log_scale") and lo <= 0:
        problems.append((where, f"log_scale needs bounds above 0, got lower bound {lo}"))
        return None
    if field_type == "int":
        return (int(lo), int(hi))
    lo, hi = canonical_value(float(lo)), canonical_value(float(hi))  # the values they bound are canonical too
    if not lo < hi:
        problems.append((where, f"bounds {lo:g} and {hi:g} are equal to {SIGNIFICANT_DIGITS} significant digits"))
        return None
    return (lo, hi)


def _cast_one(raw: Any, value_type: str, where: str, problems: list[tuple[str, str]]) -> Optional[Scalar]:
    try:
        return cast_value(value_type, raw)
    except TypeError as err:
        problems.append((where, f"{err} (the key is a {value_type})"))
        return None


def _cast_listed(raw: list[Any], value_type: str, where: str, problems: list[tuple[str, str]]) -> list[Scalar]:
    out = []
    for i, item in enumerate(raw):
        cast = _cast_one(item, value_type, f"{where}[{i}]", problems)
        if cast is not None:
            out.append(cast)
    return out


def _build_depends(
    key: str,
    raw: dict[str, list[Any]],
    params: dict[str, Parameter],
    keys: dict[str, Optional[str]],
    problems: list[tuple[str, str]],
) -> dict[str, tuple[Scalar, ...]]:
    out: dict[str, tuple[Scalar, ...]] = {}
    for parent, allowed in raw.items():
        where = f"parameters.{key}.depends_on.{parent}"
        if parent == key:
            problems.append((where, "a parameter cannot depend on itself"))
            continue
        if parent not in keys:
            problems.append((where, f"is not a key of ExperimentConfig{unknown_key_hint(parent)}"))
            continue
        ptype = keys[parent]
        if ptype is None:
            problems.append((where, "holds a list in ExperimentConfig and cannot switch a parameter on"))
            continue
        n_before = len(problems)
        cast = _cast_listed(allowed, ptype, where, problems)
        if len(problems) > n_before:
            continue
        p = params.get(parent)
        if p is not None and p.type == "range":
            msg = "only a choice or fixed parameter (or a key outside the space) can switch another on"
            problems.append((where, msg))
            continue
        if p is not None and p.type == "choice":
            stray = [v for v in cast if not any(same_value(v, c) for c in p.values)]
            if stray:
                problems.append((where, f"{stray} not among {parent}'s values {list(p.values)}"))
                continue
        if p is not None and p.type == "fixed" and not any(same_value(p.value, v) for v in cast):
            problems.append((where, f"never active: {parent} is fixed at {p.value!r} in this space"))
            continue
        out[parent] = tuple(cast)
    return out


def _check_cycles(params: dict[str, Parameter], problems: list[tuple[str, str]]) -> None:
    graph = {key: [p for p in param.depends_on if p in params] for key, param in params.items()}
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as err:
        loop = list(reversed(err.args[1]))  # graphlib lists a node, then its parent, ... back to the node
        problems.append((f"parameters.{loop[0]}.depends_on", f"dependency cycle: {' depends on '.join(loop)}"))
