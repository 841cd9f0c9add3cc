"""The tracker contract, the no-op tracker, and the one mapping from curve keys to scalar tags.

Every backend (TensorBoard, W&B, none) receives the same calls in the same shape, so the
trainer never asks which one it has: ``log_scalars`` per logged step with the keys of a
``curve.jsonl`` row, ``log_hparams`` once at the end with flattened hyperparameters, ``close``.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Protocol, runtime_checkable

# Curve-row keys (docs/ARCHITECTURE.md, curve.jsonl) → the scalar tag every backend logs them
# under. Grouping train/* and val/* puts the two losses in their own TensorBoard sections.
SCALAR_TAGS: dict[str, str] = {
    "train_loss": "train/loss",
    "val_bpb": "val/bpb",
    "lr": "lr",
    "tokens_per_s": "tokens_per_s",
    "sharpness": "sharpness",
}

# Curve-row keys that are x-axes, not measurements: the step is the axis every backend uses;
# the others would only duplicate it as rising straight lines.
AXIS_KEYS = frozenset({"step", "tokens", "seconds", "flops", "progress"})

# Prefix of the metric tags compared in the HParams view (``hparam/val_bpb``).
HPARAM_METRIC_PREFIX = "hparam/"


@runtime_checkable
class Tracker(Protocol):
    """Where a run's curves go besides ``curve.jsonl``. Implementations must never raise on a
    value they cannot log (a tracker is a side channel; training must not die of it)."""

    def log_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
        """Log one step's measurements; ``scalars`` uses curve-row keys (``train_loss``, ...)."""

    def log_hparams(self, hparams: Mapping[str, Any], metrics: Mapping[str, Any]) -> None:
        """Record this run's (flattened) hyperparameters and final metrics (``val_bpb``, ...)."""

    def close(self) -> None:
        """Flush and release; further calls are not expected."""


class NullTracker:
    """The tracker when ``logger=none``: accepts everything, writes nothing."""

    def log_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
        return None

    def log_hparams(self, hparams: Mapping[str, Any], metrics: Mapping[str, Any]) -> None:
        return None

    def close(self) -> None:
        return None

    def __enter__(self) -> "NullTracker":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def scalar_tags(scalars: Mapping[str, Any]) -> dict[str, float]:
    """Map a curve row to ``{tag: value}``: known keys get their tag, axes are dropped, other
    numeric keys keep their own name, and non-numbers (None, strings, bools) are skipped."""
    out: dict[str, float] = {}
    for key, value in scalars.items():
        if key in AXIS_KEYS or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        out[SCALAR_TAGS.get(key, key)] = float(value)
    return out


def hparam_value(value: Any) -> bool | int | float | str:
    """A value the HParams plugin (and W&B's config) accepts: bool, number or string.

    None and containers become their text, so a list-valued override still shows as a column.
    """
    if isinstance(value, (bool, int, float, str)):
        return value
    if value is None:
        return "None"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def flatten_hparams(hparams: Mapping[str, Any], prefix: str = "") -> dict[str, bool | int | float | str]:
    """``{"model": {"n_layer": 4}}`` → ``{"model.n_layer": 4}`` with HParams-safe values."""
    out: dict[str, bool | int | float | str] = {}
    for key, value in hparams.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(flatten_hparams(value, name))
        else:
            out[name] = hparam_value(value)
    return out


def metric_tags(metrics: Mapping[str, Any]) -> dict[str, float]:
    """``{"val_bpb": 1.2}`` → ``{"hparam/val_bpb": 1.2}``; non-finite and non-numeric dropped
    (a diverged trial shows an empty cell rather than a NaN that breaks the sort)."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            continue
        tag = key if key.startswith(HPARAM_METRIC_PREFIX) else HPARAM_METRIC_PREFIX + key
        out[tag] = float(value)
    return out
