"""A search space as Ax sees it, and Ax parameterisations back as hypothesis overrides.

Ax (``from ax import Client``) names parameters without dots, so ``model.rope_base`` becomes
``model__rope_base``; the mapping is reversed by lookup in the space, never by parsing.

Conditional parameters use Ax's hierarchical search spaces (``dependent_parameters`` on a
choice parameter; Ax 1.3.1 generates with them under both Sobol and BoTorch and accepts attached
trials that leave inactive children out) where Ax can express the condition: one choice parent
that switches the child on with a single value. Ax requires a tree, so a child switched on by
several values, or by several parents, cannot be expressed; such a child is an ordinary,
always-present Ax parameter instead, ``from_ax`` drops it while inactive, and ``to_ax`` gives it
a placeholder (the base value, or the nearest value of its domain) while inactive. Fixed
parameters are not given to Ax at all: they never vary. Parameters whose static conditions
(on keys outside the space, or on fixed parameters) the base config does not meet can never be
active, so they are left out too.

Constraints are not given to Ax (Ax only takes linear ones; ours allow ``%``): the caller checks
each suggestion with ``validate_hypothesis`` and tells Ax about the ones it refuses.

Importing this module does not import Ax (seconds of start-up); ``ax_parameters`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

from autoresearch.search.canonical import same_value
from autoresearch.search.hypothesis import Scalar
from autoresearch.search.space import Parameter, SearchSpace

if TYPE_CHECKING:
    from ax import ChoiceParameterConfig, RangeParameterConfig


def ax_name(key: str) -> str:
    """``model.rope_base`` → ``model__rope_base`` (config keys never contain ``__``)."""
    return key.replace(".", "__")


@dataclass(frozen=True)
class _Entry:
    key: str
    hierarchical: bool  # present in Ax exactly when active; otherwise always present
    parent: Optional[str] = None  # hierarchical: the choice parameter that switches it on …
    on_value: Optional[Scalar] = None  # … with this value


def _plan(space: SearchSpace, base: dict[str, Any]) -> list[_Entry]:
    """Which parameters Ax gets and how, parents before children."""
    eff = space.effective_base(base)
    entries: dict[str, _Entry] = {}
    exact: dict[str, bool] = {}  # Ax's presence of the parameter equals its activity
    for key in space.topological_order():
        p = space.parameters[key]
        if p.type == "fixed":
            continue
        dynamic = []
        never = False
        for parent, allowed in p.depends_on.items():
            pp = space.parameters.get(parent)
            if pp is None or pp.type == "fixed":
                never |= not any(same_value(eff[parent], a) for a in allowed)
            else:
                dynamic.append((parent, allowed))
        if never or any(parent not in entries for parent, _ in dynamic):
            continue
        if not dynamic:
            entries[key], exact[key] = _Entry(key, hierarchical=False), True
        elif len(dynamic) == 1 and len(dynamic[0][1]) == 1 and exact[dynamic[0][0]]:
            parent, (value,) = dynamic[0]
            entries[key], exact[key] = _Entry(key, hierarchical=True, parent=parent, on_value=value), True
        else:
            entries[key], exact[key] = _Entry(key, hierarchical=False), False
    return list(entries.values())


def ax_parameters(space: SearchSpace, base: dict[str, Any]) -> list["RangeParameterConfig | ChoiceParameterConfig"]:
    """Parameter configs for ``Client.configure_experiment(parameters=...)``."""
    from ax import ChoiceParameterConfig, RangeParameterConfig

    plan = _plan(space, base)
    children: dict[str, dict[Scalar, list[str]]] = {}
    for e in plan:
        if e.hierarchical:
            by_value = children.setdefault(e.parent, {})  # type: ignore[arg-type]
            by_value.setdefault(e.on_value, []).append(ax_name(e.key))  # type: ignore[arg-type]
    out: list[RangeParameterConfig | ChoiceParameterConfig] = []
    for e in plan:
        p = space.parameters[e.key]
        if p.type == "range":
            lo, hi = p.bounds  # type: ignore[misc]
            out.append(
                RangeParameterConfig(
                    name=ax_name(e.key),
                    bounds=(lo, hi),
                    parameter_type=p.value_type,  # type: ignore[arg-type]
                    scaling="log" if p.log_scale else "linear",
                )
            )
        else:
            out.append(
                ChoiceParameterConfig(
                    name=ax_name(e.key),
                    values=list(p.values),  # type: ignore[arg-type]
                    parameter_type=p.value_type,
                    is_ordered=p.ordered,
                    dependent_parameters=children.get(e.key),
                )
            )
    return out


def from_ax(params: dict[str, Any], space: SearchSpace, base: dict[str, Any]) -> dict[str, Scalar]:
    """An Ax parameterisation as overrides: dotted keys, config types, inactive children dropped."""
    by_ax = {ax_name(k): k for k in space.parameters}
    values: dict[str, Scalar] = {}
    for name, value in params.items():
        key = by_ax.get(name)
        if key is None:
            raise ValueError(f"Ax parameter {name!r} is not in search space {space.name}")
        plain = value.item() if hasattr(value, "item") else value  # numpy scalars from Ax
        try:
            values[key] = space.parameters[key].cast(plain)
        except TypeError as err:
            raise ValueError(f"Ax value for {key} {err}") from None
    merged = {**space.effective_base(base), **values}
    return {k: values[k] for k in space.parameters if k in values and space.is_active(k, merged)}


def to_ax(overrides: dict[str, Any], space: SearchSpace, base: dict[str, Any]) -> dict[str, Scalar]:
    """A full Ax parameterisation of ``base`` + ``overrides`` (to attach another agent's trial).

    Active parameters carry their real value, even one outside the space's domain (Ax attaches
    such a trial as out-of-design). Inactive hierarchical children are left out, as Ax expects;
    inactive non-hierarchical ones get a placeholder inside their domain.
    """
    unknown = [k for k in overrides if k not in space.parameters]
    if unknown:
        raise ValueError(f"{', '.join(unknown)} not in search space {space.name}")
    merged = {**space.effective_base(base), **overrides}
    out: dict[str, Scalar] = {}
    for e in _plan(space, base):
        p = space.parameters[e.key]
        active = space.is_active(e.key, merged)
        if e.hierarchical and not active:
            continue
        value = p.cast(merged[e.key])
        out[ax_name(e.key)] = value if active else _placeholder(p, value)
    return out


def _placeholder(p: Parameter, value: Scalar) -> Scalar:
    """A stand-in for an inactive parameter's (ignored) value: ``value`` itself if in the domain."""
    if p.check(value) is None:
        return value
    if p.type == "choice":
        return p.values[0]
    lo, hi = p.bounds  # type: ignore[misc]
    return p.cast(min(max(value, lo), hi))  # type: ignore[type-var]
