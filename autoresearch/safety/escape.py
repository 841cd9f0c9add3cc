"""One escaping helper per kind of sink, for text that came from outside (agents, files, bundles).

Each sink interprets different characters, so each has its own helper; all of them first make
control characters visible, because a carriage return, an ANSI/OSC escape sequence, a bidi
override or a lone surrogate means something to a terminal or a renderer and nothing to a reader:

* ``terminal_text`` — a terminal or a log line: control characters and escape sequences shown as
  ``\\x1b``, ``\\r``, ``\\u202e``; a newline shown as ``\\n`` (unless kept), so text cannot forge a
  second log line.
* ``markdown_inline`` — inside a Markdown paragraph, list item, heading or table cell: one line,
  every Markdown punctuation character backslash-escaped and ``<``, ``>``, ``&`` as entities, so
  it can hold no HTML, link, emphasis, heading, list marker or table cell boundary; clipped.
* ``markdown_code`` — a block of untrusted lines (an error's tail) as a fenced code block whose
  fence is longer than any backtick run inside, so the text cannot close it.
* ``safe_name`` — a name from outside used as one path component or a one-line label: letters,
  digits, ``.``, ``_`` and ``-`` only, never ``..``, bounded in length.
* ``rich_text`` / ``rich_escape`` — for rich: a ``Text`` (never parsed as markup) or a string
  with markup escaped, so ``[/]`` cannot crash a table and ``[link=…]`` cannot become a link.
"""

from __future__ import annotations

import re
from typing import Any

ELLIPSIS = "…"
DEFAULT_LIMIT = 2000

# Every character a terminal or renderer acts on: C0 (incl. ESC, CR), DEL, C1 (incl. CSI, OSC),
# line/paragraph separators, bidi embeddings/overrides/isolates, zero-width and BOM, and the
# surrogates (a lone one cannot even be encoded).
_CONTROL = re.compile(
    "[\x00-\x1f\x7f-\x9f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\ud800-\udfff]"
)
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~$])")
# Only at the start of a line do these open a block: a list item (``-``, ``1.``, ``1)``) or a
# setext heading underline (``=``, ``-``).
_MARKDOWN_LINE_START = re.compile(r"^(\d*)([-=.)])")
_MARKDOWN_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_WHITESPACE = re.compile(r"[ \t\n]+")


def _visible(ch: str) -> str:
    code = ord(ch)
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
    if ch in named:
        return named[ch]
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def _clip(text: str, limit: int | None) -> str:
    if limit is None or len(text) <= limit:
        return text
    return text[: max(0, limit - 1)] + ELLIPSIS


def terminal_text(text: Any, *, limit: int | None = None, keep_newlines: bool = False, keep_tabs: bool = True) -> str:
    """``text`` safe for a terminal or a log line: control characters and escape sequences visible,
    newlines visible unless ``keep_newlines``; clipped to ``limit`` characters when given."""
    text = _clip(str(text), limit)
    keep = ("\n" if keep_newlines else "") + ("\t" if keep_tabs else "")

    def repl(m: re.Match) -> str:
        return m[0] if m[0] in keep else _visible(m[0])

    return _CONTROL.sub(repl, text)


def markdown_inline(text: Any, *, limit: int | None = DEFAULT_LIMIT) -> str:
    """``text`` as inert Markdown on one line: usable in a paragraph, list item, heading or table
    cell, where it cannot open HTML, a link, emphasis, code, a heading or a new table cell.
    Whitespace runs (newlines included) become one space; control characters become visible."""
    text = _WHITESPACE.sub(" ", str(text)).strip()
    text = terminal_text(_clip(text, limit), keep_tabs=False)
    text = _MARKDOWN_SPECIAL.sub(r"\\\1", text)
    text = _MARKDOWN_LINE_START.sub(r"\1\\\2", text)
    return "".join(_MARKDOWN_ENTITIES.get(ch, ch) for ch in text)


def markdown_code(text: Any, *, limit: int | None = DEFAULT_LIMIT, info: str = "text") -> str:
    """``text`` as a fenced code block (lines kept, control characters visible, clipped from the
    start so the end of an error stays): nothing inside is rendered, and it cannot close the fence."""
    text = str(text)
    if limit is not None and len(text) > limit:
        text = ELLIPSIS + text[len(text) - limit + 1 :]
    body = terminal_text(text, keep_newlines=True)
    longest = max((len(run) for run in re.findall(r"`+|~+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{body}\n{fence}"


_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: Any, *, default: str = "unnamed", limit: int = 64) -> str:
    """``text`` as a single safe path component / label: other characters become ``_``, leading
    dots and dashes are dropped (no ``..``, no hidden file, no option), clipped to ``limit``."""
    name = _UNSAFE_NAME.sub("_", str(text)).lstrip(".-")[:limit].rstrip(".")
    return name or default


def rich_escape(text: Any, *, limit: int | None = None) -> str:
    """``text`` for a rich markup string: control characters visible and ``[`` escaped."""
    from rich.markup import escape

    return escape(terminal_text(text, limit=limit))


def rich_text(text: Any, *, limit: int | None = None, style: str = "", keep_newlines: bool = False) -> "Any":
    """``text`` as a ``rich.text.Text``, which rich never parses as markup; control characters visible."""
    from rich.text import Text

    return Text(terminal_text(text, limit=limit, keep_newlines=keep_newlines), style=style)
