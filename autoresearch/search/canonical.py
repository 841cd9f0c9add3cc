"""Canonical values, clean text and the one config fingerprint of the project.

Two configs are the same experiment when their canonical values are equal, and everything that
decides "same" goes through here: the gate's duplicate check, the fingerprint stored with every
trial, an agent's memory of what it already tried, and the value that is finally run. The rules:

* ``-0.0`` is ``0.0``.
* A float keeps ``SIGNIFICANT_DIGITS`` (6) significant digits. Why 6: no hyperparameter here is
  meaningful past 3-4 digits (the random sampler draws 4), yet 6 keeps every value a person or
  Ax's log-scale search writes apart from its neighbours, while collapsing what is only noise
  (``0.1 + 0.2``, a log/exp round trip, a value differing in its 10th digit). The rounded value
  is the one that trains, so a repeat can never hide behind a digit nobody could measure.
* Integers are exact. Booleans are not numbers (``True`` is not ``1``).
* A value keeps its type: the config's types decide it (the gate casts every override to its
  key's type), so ``4`` and ``4.0`` never both reach a fingerprint for one key. Values already
  canonical hash exactly as before this module existed, so fingerprints kept in an existing
  store still match.

Text from agents is normalised by ``clean_text``: a lone UTF-16 surrogate (which no UTF-8 sink,
SQLite included, can hold) and every control character except newline and tab become U+FFFD,
and ``\\r\\n`` or a lone ``\\r`` become ``\\n``. The text stays readable and shows that something
was replaced; nothing is silently dropped.

This module imports only the standard library, so any package may use it.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any, Iterable, Mapping

SIGNIFICANT_DIGITS = 6
# What an SQLite INTEGER (and a torch int64) holds; an integer outside is never a config value.
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
REPLACEMENT = "\ufffd"

_UNSAFE_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def canonical_value(value: Any) -> Any:
    """The canonical form of one config value (see the module docstring); other types unchanged."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return value
        rounded = float(f"{value:.{SIGNIFICANT_DIGITS}g}")
        return 0.0 if rounded == 0 else rounded  # -0.0 -> 0.0
    return value


def same_value(a: Any, b: Any) -> bool:
    """Equal canonical values; booleans only ever equal booleans (``True != 1`` here, ``3 == 3.0``)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return canonical_value(a) == canonical_value(b)


def config_fingerprint(flat_config: Mapping[str, Any], ignore: Iterable[str] = ()) -> str:
    """Stable hash of a flattened config: two runs with equal fingerprints are repeats.

    The one fingerprint of the project. Values are canonicalised first, so ``-0.0``/``0.0`` and
    floats equal to 6 significant digits give the same fingerprint.
    """
    skip = set(ignore)
    items = {str(k): _fingerprint_value(v) for k, v in flat_config.items() if k not in skip}
    text = json.dumps(items, sort_keys=True, default=str, ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:16]


def _fingerprint_value(value: Any) -> Any:
    value = canonical_value(value)
    if isinstance(value, (list, tuple)):
        return [_fingerprint_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _fingerprint_value(v) for k, v in value.items()}
    return value


def clean_text(text: str) -> str:
    """Agent text made safe for every UTF-8 sink (see the module docstring for the rule)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _UNSAFE_CHARS.sub(REPLACEMENT, text)


def has_unsafe_chars(text: str) -> bool:
    """Whether ``clean_text`` would change anything but line endings."""
    return _UNSAFE_CHARS.search(text) is not None
