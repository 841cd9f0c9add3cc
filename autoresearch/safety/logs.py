"""Log records that cannot carry a secret or forge a line.

Log messages quote untrusted text (an agent's rationale, an error from a provider, a bundle's
name). ``SafeLogFilter`` runs on a handler, so it sees every record that handler writes, from any
logger: it renders the message, scrubs it (``secrets.scrub_text``) and makes control characters and
newlines visible (``escape.terminal_text``), so one record is one line. A traceback keeps its
line breaks (that is its format) but is scrubbed and has every other control character shown.
"""

from __future__ import annotations

import logging
import traceback

from autoresearch.safety.escape import terminal_text
from autoresearch.safety.secrets import scrub_text

_MARK = "_autoresearch_safe"


class SafeLogFilter(logging.Filter):
    """Scrub and escape each record in place; never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, _MARK, False):  # two handlers share the record: do it once
            return True
        try:
            message = record.getMessage()
        except Exception as err:  # noqa: BLE001 - a bad format string must not lose the record
            message = f"{record.msg!r} (unformattable: {err})"
        record.msg = terminal_text(scrub_text(message))
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = terminal_text(scrub_text(record.exc_text), keep_newlines=True)
        if record.stack_info:
            record.stack_info = terminal_text(scrub_text(record.stack_info), keep_newlines=True)
        setattr(record, _MARK, True)
        return True


def install_log_safety(logger: logging.Logger | None = None) -> None:
    """Add one ``SafeLogFilter`` to every handler of ``logger`` (default: the root logger) that has
    none yet. Call it after the handlers exist (after ``logging.basicConfig`` or Hydra's set-up)."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, SafeLogFilter) for f in handler.filters):
            handler.addFilter(SafeLogFilter())
