"""The on-disk cache of prepared data: keys, a build lock, atomic publication, the hash memo.

Layout under ``<cache_dir>/data/``::

    <key>/                 one prepared corpus: train.bin val.bin test.bin [tokenizer.json] manifest.json
    .<key>.lock            held while <key>/ is being built
    .tmp-<key>-<pid>-<r>/  a build in progress (renamed to <key>/ when complete)
    sha256-memo.json       file hashes keyed by (path, size, mtime), so warm calls re-hash nothing

Many trial processes may ask for the same corpus at once. One builds it, under an exclusive
lock (``filelock``: ``flock`` on POSIX, ``msvcrt`` on Windows), into a private temporary folder,
and publishes it with one ``rename``: a reader sees either no folder or a complete one. Where
file locks do not work (some network filesystems), two builders may both finish; the rename of
the second fails and it uses the winner's files.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import uuid
from pathlib import Path
from typing import Iterator

from filelock import FileLock

log = logging.getLogger(__name__)

MEMO_FILE = "sha256-memo.json"


def cache_key(spec: dict, prefix: str) -> str:
    """``<prefix>-<16 hex>``: the hash of everything that determines the prepared output."""
    blob = json.dumps(spec, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return f"{prefix}-{hashlib.sha256(blob).hexdigest()[:16]}"


@contextlib.contextmanager
def build_lock(path: Path) -> Iterator[bool]:
    """An exclusive lock on ``path`` (blocking), on every platform. Yields whether the lock is
    real: where the filesystem refuses file locks it is a no-op, and atomic publication keeps that
    case correct, only less frugal."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path)
    try:
        lock.acquire()
    except (NotImplementedError, OSError) as err:
        log.warning("no file lock on %s (%s): builders may duplicate work", path, err)
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


def new_build_dir(root: Path, key: str) -> Path:
    d = root / f".tmp-{key}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    d.mkdir(parents=True)
    return d


def remove_abandoned_builds(root: Path, key: str) -> None:
    """Delete build folders of ``key`` left by processes that died mid-build. Call only while
    holding the key's lock: every live builder holds it, so what is left belongs to the dead."""
    for d in root.glob(f".tmp-{key}-*"):
        log.info("removing an abandoned build: %s", d)
        shutil.rmtree(d, ignore_errors=True)


def publish(tmp: Path, final: Path) -> bool:
    """Move a finished build into place. False when another process published first (then
    ``tmp`` is removed and the caller uses ``final``)."""
    try:
        os.rename(tmp, final)
        return True
    except OSError:
        if not final.is_dir():
            raise
        shutil.rmtree(tmp, ignore_errors=True)
        return False


def discard(path: Path) -> None:
    """Move a broken entry out of the way first (atomic), then delete it. Readers that already
    memory-mapped its files keep valid mappings."""
    if not path.exists():
        return
    graveyard = path.with_name(f".stale-{path.name}-{uuid.uuid4().hex[:8]}")
    os.rename(path, graveyard)
    shutil.rmtree(graveyard, ignore_errors=True)


def load_memo(root: Path) -> dict[str, str]:
    try:
        memo = json.loads((root / MEMO_FILE).read_text())
        return memo if isinstance(memo, dict) else {}
    except (OSError, ValueError):
        return {}


def save_memo(root: Path, memo: dict[str, str], before: dict[str, str]) -> None:
    """Write the memo if it grew. Concurrent writers each replace it whole (last one wins);
    losing an entry only costs one re-hash later."""
    if memo == before:
        return
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{MEMO_FILE}.{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.write_text(json.dumps(memo, sort_keys=True))
    os.replace(tmp, root / MEMO_FILE)


def file_sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
