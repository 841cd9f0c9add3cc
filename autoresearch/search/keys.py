"""Which dotted config keys exist, what type each holds, and which ones no search may touch.

Both search-space files and agents' proposals name config keys (``model.rope_base``). The only
source of truth for what exists is ``autoresearch.config.ExperimentConfig``: the keys are read
from its dataclass fields, so a field added there becomes searchable without touching this
package, and a typo in a search space or a proposal is an error instead of a silent no-op.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re
import types
import typing
from typing import Any, Optional

from autoresearch.config import ExperimentConfig, renamed_key

# A plain dotted path of lower-case identifiers: what Hydra calls a key, without its grammar
# (no ``~``/``+`` prefixes, ``@`` packages, ``/`` groups, quotes or interpolations).
KEY_PATTERN = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*$")

# Keys no search space may list and no agent may override, each with the reason shown to
# whoever tried. A prefix covers everything below it (``trainer.budget`` covers
# ``trainer.budget.value``). Beyond the run's plumbing, the keys that define the measurement are
# here too: a hypothesis that wins by training longer, scoring fewer bytes or moving the seed
# has not found anything about the model.
FORBIDDEN_KEYS: dict[str, str] = {
    "hydra": "Hydra's own settings (run directories, logging, launchers) are not part of an experiment",
    "campaign": "the campaign's settings are fixed by whoever started it",
    "agent": "agents do not reconfigure agents",
    "critic": "the critic's rules decide what counts as a discovery and are not searchable",
    "logger": "logging does not change what a run learns",
    "seed": "moving the seed finds luck, not a discovery",
    "name": "the campaign names its trials",
    "data.cache_dir": "filesystem locations are not hyperparameters",
    "data.path": "filesystem locations are not hyperparameters",
    "data.kind": "changing the corpus changes what val_bpb measures",
    "data.text_column": "changing the corpus changes what val_bpb measures",
    "data.val_fraction": "changing the split changes what val_bpb measures",
    "data.test_fraction": "changing the split changes what val_bpb measures",
    "data.split_seed": "changing the split changes what val_bpb measures",
    "trainer.device": "the device is chosen by whoever runs the campaign",
    "trainer.threads": "the CPU threads are chosen by whoever runs the campaign, like the device",
    "trainer.budget": "every trial gets the same training budget, so a win cannot come from training longer",
    "trainer.untimed_warmup_steps": "warm-up steps train outside the seconds budget, so a win could come from training longer",
    "trainer.eval_points": "evaluations are part of the measurement (and take time from a seconds budget)",
    "trainer.eval_bytes": "changing how much is evaluated changes what val_bpb measures",
    "trainer.final_eval_bytes": "changing how much is evaluated changes what val_bpb measures",
    "trainer.log_every": "logging does not change what a run learns (and takes time from a seconds budget)",
    "trainer.divergence_factor": "when a run counts as diverged is the critic's rule, not a hyperparameter",
    "trainer.save_checkpoint": "the held-out test split is scored from the saved weights",
    "trainer.peak_flops": "the device's peak FLOP/s is a measurement constant, not a hyperparameter",
}
# The keys above that change a trial's budget, its evaluation, its seed or where and how fast it
# runs (a subset kept explicit so a test can check that none ever leaves FORBIDDEN_KEYS).
BUDGET_KEYS: tuple[str, ...] = (
    "seed",
    "trainer.budget",
    "trainer.untimed_warmup_steps",
    "trainer.eval_points",
    "trainer.eval_bytes",
    "trainer.final_eval_bytes",
    "trainer.device",
    "trainer.threads",
    "data.split_seed",
    "data.val_fraction",
    "data.test_fraction",
)

# Config leaf types as search spaces name them.
ValueType = typing.Literal["int", "float", "str", "bool"]
_PY_TYPES: dict[type, str] = {int: "int", float: "float", str: "str", bool: "bool"}


def forbidden_reason(key: str) -> Optional[str]:
    """Why ``key`` may never be searched, or None if it may."""
    for prefix, reason in FORBIDDEN_KEYS.items():
        if key == prefix or key.startswith(prefix + "."):
            return reason
    return None


@functools.cache
def config_keys() -> dict[str, Optional[str]]:
    """Every leaf of ``ExperimentConfig`` → its value type, or None for non-scalar leaves (lists).

    ``Optional[X]`` counts as ``X`` (``campaign`` is None outside a campaign but its keys exist).
    Cached: it depends on code only, never on input.
    """
    out: dict[str, Optional[str]] = {}
    _walk(ExperimentConfig, "", out)
    return out


def _walk(cls: type, prefix: str, out: dict[str, Optional[str]]) -> None:
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        tp = _unwrap_optional(hints[f.name])
        if dataclasses.is_dataclass(tp):
            _walk(tp, key + ".", out)  # type: ignore[arg-type]
        else:
            out[key] = _PY_TYPES.get(tp)  # type: ignore[arg-type]


def _unwrap_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def unknown_key_hint(key: str, candidates: list[str] | None = None) -> str:
    """`` (did you mean model.rope_base?)`` when something close exists, `` (optim.warmup was renamed
    optim.warmup_fraction)`` for an old name, else an empty string."""
    renamed = renamed_key(key)
    if renamed is not None:
        return f" ({key} {renamed})" if renamed.startswith("was ") else f" ({renamed})"
    pool = candidates if candidates is not None else list(config_keys())
    close = difflib.get_close_matches(key, pool, n=1, cutoff=0.75)
    return f" (did you mean {close[0]}?)" if close else ""
