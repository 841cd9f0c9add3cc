"""The one secret scrubber: what it recognises, and the rule for environment values.

Everything autoresearch writes down outlives the shell it ran in: the store is copied and read by
agents, bundles are shared, the lock goes into a Docker image, prompts go to a provider, logs get
pasted into issues. So every one of them passes through ``scrub_text`` / ``scrub``, which replace

* keys in the common published formats, wherever they appear: OpenAI (``sk-…``, ``sk-proj-…``),
  Anthropic (``sk-ant-…``), Hugging Face (``hf_…``), GitHub (``ghp_``/``gho_``/``ghu_``/``ghs_``/
  ``ghr_…``, ``github_pat_…``), AWS access key ids (``AKIA…``/``ASIA…``);
* the token after ``Bearer``; the ``user:password`` part of a URL (``pip freeze`` lists
  ``git+https://user:token@host/…`` requirements and index URLs verbatim);
* the value in a ``NAME=value`` / ``NAME: value`` assignment whose name looks like a credential
  (``aws_secret_access_key = …``, ``DB_PASSWORD: …``);
* the value of every environment variable whose name looks like a credential (``*_KEY``,
  ``*_TOKEN``, ``*_SECRET``, ``*PASSWORD``, ``*_PASS``, ``*CREDENTIALS``), read at call time, since a
  key may be exported after a store was opened — when it is at least ``MIN_SECRET_CHARS`` long
  (shorter values are flags such as ``1`` or ``true``; replacing them everywhere would mangle
  every text without protecting anything).

In a mapping, the value under a credential-named key is replaced whole.
"""

from __future__ import annotations

import os
import re
from collections import abc
from typing import Any, Iterable, Mapping, Optional

REDACTED = "***"
MIN_SECRET_CHARS = 6
SECRET_NAME = re.compile(r"(?:_KEY|_TOKEN|_SECRET|PASSWORD|PASSWD|_PASS|CREDENTIALS?)$", re.IGNORECASE)

# Each published key format. Lookaheads demand a digit where ordinary hyphenated words could
# otherwise match (``sk-learn-is-a-library``); the lengths are the formats' own minimums, rounded down.
_KEY_PATTERNS = (
    re.compile(r"\bsk-(?:ant-|proj-|svcacct-|admin-)?(?=[A-Za-z0-9_-]*\d)[A-Za-z0-9_-]{16,}"),
    re.compile(r"\bhf_[A-Za-z0-9]{30,}"),
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}"),
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{30,}"),
    re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
)
_BEARER = re.compile(r"\b((?i:bearer)\s+)[A-Za-z0-9._~+/=-]{6,}")
# user:password (the password may hold any character but whitespace and "@") or a lone token-length user.
_URL_CREDENTIALS = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<cred>[^/@\s:]+:[^@\s]*|[^/@\s:]{20,})@")
# The value must look like a credential — a digit in it, or 12+ characters — so that prose about a
# key (``model.nonexistent_key: unknown key …`` in a config error) is not mangled; a short
# letters-only secret still goes when it is the value of a secret-named environment variable.
_ASSIGNMENT = re.compile(
    r"(?P<name>\b[A-Za-z_][A-Za-z0-9_]*(?i:_KEY|_TOKEN|_SECRET|PASSWORD|PASSWD|_PASS|CREDENTIALS?))\b"
    r"(?P<sep>[\"']?\s*[:=]\s*[\"']?)"
    r"(?P<value>(?=[^\s\"',;]*\d)[^\s\"',;]{%d,}|[^\s\"',;]{12,})" % MIN_SECRET_CHARS
)
# Every pattern above needs one of these substrings; most texts (keys, numbers, names) hold none,
# and a substring test is far cheaper than the patterns.
_NEEDLES = re.compile(r"sk-|hf_|gh|AKIA|ASIA|earer|EARER|[=:]")


def secret_env_names(environ: Optional[Mapping[str, str]] = None) -> list[str]:
    """Names of the environment variables treated as secrets (their values are never written)."""
    env = os.environ if environ is None else environ
    return sorted(name for name in env if SECRET_NAME.search(name))


def secret_values(environ: Optional[Mapping[str, str]] = None) -> list[str]:
    """The values of secret-named variables to redact, longest first (a secret containing another goes whole)."""
    env = os.environ if environ is None else environ
    values = {env[name] for name in secret_env_names(env) if len(env[name]) >= MIN_SECRET_CHARS}
    return sorted(values, key=len, reverse=True)


def scrub_text(text: str, secrets: Optional[Iterable[str]] = None) -> str:
    """``text`` with every secret replaced by ``REDACTED``. ``secrets``: extra literal values to
    redact (default: the secret-named environment values, read now)."""
    values = secret_values() if secrets is None else _longest_first(secrets)
    return _scrub_text(text, values)


def _longest_first(secrets: Iterable[str]) -> list[str]:
    return sorted({s for s in secrets if s}, key=len, reverse=True)


def _scrub_text(text: str, values: list[str]) -> str:
    for value in values:
        if value in text:
            text = text.replace(value, REDACTED)
    if not _NEEDLES.search(text):
        return text
    for pattern in _KEY_PATTERNS:
        text = pattern.sub(REDACTED, text)
    text = _BEARER.sub(lambda m: m[1] + REDACTED, text)
    text = _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{REDACTED}@", text)
    return _ASSIGNMENT.sub(lambda m: m["name"] + m["sep"] + (m["value"] if m["value"] == REDACTED else REDACTED), text)


def scrub(value: Any, secrets: Optional[Iterable[str]] = None) -> Any:
    """A copy of ``value`` (a string or JSON-like structure) with every string scrubbed, dict keys
    included; the value under a credential-named key is replaced whole. Other scalars pass through."""
    values = secret_values() if secrets is None else _longest_first(secrets)
    return _scrub(value, values)


def _scrub(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        return _scrub_text(value, secrets)
    if isinstance(value, (dict, abc.Mapping)):
        return {
            _scrub(k, secrets): REDACTED if _names_secret(k, v) else _scrub(v, secrets) for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_scrub(v, secrets) for v in value]
    return value


def _names_secret(key: Any, value: Any) -> bool:
    return isinstance(key, str) and isinstance(value, str) and bool(SECRET_NAME.search(key)) and len(value) >= MIN_SECRET_CHARS


def find_secret(value: Any) -> Optional[str]:
    """Where in ``value`` (a string or structure) a secret appears — a dotted path such as
    ``agent.llm.api_key_env`` (``""`` for a bare string) — or None. Used to refuse a key pasted into a
    config before anything is stored."""
    return _find(value, "")


def _find(value: Any, path: str) -> Optional[str]:
    if isinstance(value, str):
        return path if looks_like_secret(value) else None
    if isinstance(value, (dict, abc.Mapping)):
        for k, v in value.items():
            child = f"{path}.{k}" if path else str(k)
            if _names_secret(k, v) or (found := _find(v, child)) is not None:
                return child if _names_secret(k, v) else found
        return None
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            if (found := _find(v, f"{path}[{i}]")) is not None:
                return found
    return None


def looks_like_secret(text: str) -> bool:
    """Does ``text`` hold a key in a known format, a bearer token, URL credentials, or the value
    of a secret-named environment variable? (Environment values are read now.)"""
    return scrub_text(text) != text
