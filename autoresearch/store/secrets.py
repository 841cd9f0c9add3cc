"""Keep credentials out of anything that is written down.

The store outlives the shell it was written from and gets copied, attached to issues and read
by agents (the llm agent sees past errors in its prompt). An API key that leaks into an error
message, a config dump or an agent's rationale must therefore be replaced before it is written.
We look the secrets up in the environment at write time rather than once, because a key may be
exported after the store was opened.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Optional

REDACTED = "***"
SECRET_SUFFIXES = ("_KEY", "_TOKEN", "_SECRET", "PASSWORD")
MIN_SECRET_LENGTH = 8  # shorter values ("1", "true") would redact ordinary text


def secret_values(environ: Optional[Mapping[str, str]] = None) -> list[str]:
    """Values of variables whose names look like credentials, longest first (so that a secret that
    contains another is replaced whole)."""
    env = os.environ if environ is None else environ
    values = {
        value
        for name, value in env.items()
        if name.upper().endswith(SECRET_SUFFIXES) and value and len(value) > MIN_SECRET_LENGTH
    }
    return sorted(values, key=len, reverse=True)


def scrub_secrets(value: Any, secrets: Optional[list[str]] = None) -> Any:
    """A copy of ``value`` (str or JSON-like structure) with every secret replaced by ``***``.

    Dict keys are scrubbed too; non-string scalars pass through unchanged.
    """
    secrets = secret_values() if secrets is None else secrets
    if not secrets:
        return value
    return _scrub(value, secrets)


def _scrub(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, dict):
        return {_scrub(k, secrets): _scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub(v, secrets) for v in value]
    return value
