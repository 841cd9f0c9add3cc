"""Keep credentials out of everything a bundle writes.

A bundle is meant to be shared (attached to a report, committed next to a discovery, copied into
a Docker image), so any value that might be a credential is replaced before it is written:
the value of every environment variable whose name ends in ``_KEY``, ``_TOKEN``, ``_SECRET`` or
``PASSWORD``, wherever it appears, and the user:password part of any URL (``pip freeze`` lists
``git+https://user:token@host/...`` requirements verbatim).
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any, Mapping, Optional

log = logging.getLogger(__name__)

SECRET_NAME_SUFFIXES = ("_KEY", "_TOKEN", "_SECRET", "PASSWORD")
REDACTED = "***REDACTED***"
# Shorter values are not credentials (flags like "1", "true"); replacing them everywhere would
# mangle the lock and the config without protecting anything.
MIN_SECRET_CHARS = 6
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<cred>[^/@\s:]+(?::[^/@\s]*)?)@")


def secret_env_names(environ: Optional[Mapping[str, str]] = None) -> list[str]:
    """Names of the environment variables treated as secrets (their values are never written)."""
    env = os.environ if environ is None else environ
    return sorted(name for name in env if name.upper().endswith(SECRET_NAME_SUFFIXES))


def secret_values(environ: Optional[Mapping[str, str]] = None) -> list[str]:
    """The values to redact, longest first (so a secret containing another goes whole)."""
    env = os.environ if environ is None else environ
    values = set()
    for name in secret_env_names(env):
        value = env[name]
        if len(value) >= MIN_SECRET_CHARS:
            values.add(value)
        elif value:
            log.debug("%s is shorter than %d characters: not treated as a credential", name, MIN_SECRET_CHARS)
    return sorted(values, key=len, reverse=True)


def scrub_text(text: str, secrets: list[str]) -> str:
    for value in secrets:
        text = text.replace(value, REDACTED)
    return _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{REDACTED}@", text)


def scrub(obj: Any, secrets: list[str]) -> Any:
    """``obj`` with every string (keys included) scrubbed; other values unchanged."""
    if isinstance(obj, str):
        return scrub_text(obj, secrets)
    if isinstance(obj, Mapping):
        return {scrub(k, secrets): scrub(v, secrets) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [scrub(v, secrets) for v in obj]
    return obj
