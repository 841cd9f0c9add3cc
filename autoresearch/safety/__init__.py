"""Untrusted text made safe for the place it is written, and secrets kept out of everything written.

A leaf package (it imports nothing of autoresearch), so every room can use it:

* ``escape`` — one helper per kind of sink: Markdown (``markdown_inline``, ``markdown_code``),
  terminal and log lines (``terminal_text``), rich (``rich_text``, ``rich_escape``), and a name
  used as a path component or label (``safe_name``).
* ``secrets`` — one scrubber (``scrub_text``, ``scrub``) for the store, bundles, the lock,
  prompts and logs: common key formats, bearer tokens, credentials in URLs, ``NAME=value``
  assignments of secret-named variables, and the values of secret-named environment variables.
* ``logs`` — ``install_log_safety()``: a logging filter that scrubs and escapes every record, so a
  log line can neither carry a key nor be forged by a newline or an escape sequence.
"""

from autoresearch.safety.escape import (
    markdown_code,
    markdown_inline,
    rich_escape,
    rich_text,
    safe_name,
    terminal_text,
)
from autoresearch.safety.logs import SafeLogFilter, install_log_safety
from autoresearch.safety.secrets import (
    MIN_SECRET_CHARS,
    REDACTED,
    find_secret,
    looks_like_secret,
    scrub,
    scrub_text,
    secret_env_names,
    secret_values,
)

__all__ = [
    "MIN_SECRET_CHARS",
    "REDACTED",
    "SafeLogFilter",
    "find_secret",
    "install_log_safety",
    "looks_like_secret",
    "markdown_code",
    "markdown_inline",
    "rich_escape",
    "rich_text",
    "safe_name",
    "scrub",
    "scrub_text",
    "secret_env_names",
    "secret_values",
    "terminal_text",
]
