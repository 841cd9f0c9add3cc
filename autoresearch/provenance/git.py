"""The code version of a run: commit, whether the tree was dirty, and a hash of the difference.

No remote URL is recorded (it may carry a token, and a bundle must not depend on where the
repository happened to be hosted). Works outside a repository and without git installed,
saying which. ``GIT_OPTIONAL_LOCKS=0`` keeps ``git status`` from taking the index lock, so
recording a bundle never collides with a commit someone is making at the same moment.
"""

from __future__ import annotations

import functools
import hashlib
import os
import subprocess
from pathlib import Path
from typing import Any, Optional

NOT_A_REPO = "not a git repository"
# Untracked files above this size enter the hash by path and size only: a stray dataset that
# is not git-ignored must not make every run's bundle read gigabytes.
MAX_HASHED_BYTES = 16 << 20
# The source tree this package was imported from (the repository root of an editable install).
PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, env=env, timeout=60)


def git_info(code_dir: Path) -> dict[str, Any]:
    """``{"commit", "dirty", "diff_sha256", "untracked", "error"}`` for the repository holding
    ``code_dir``. ``diff_sha256`` hashes ``git diff HEAD --binary`` plus the path and content
    of every untracked, non-ignored file (by size above ``MAX_HASHED_BYTES``), so two runs
    with the same commit and the same hash ran the same code; it is null when the tree is clean."""
    info: dict[str, Any] = {"commit": None, "dirty": None, "diff_sha256": None, "untracked": 0, "error": None}
    code_dir = Path(code_dir)
    try:
        top = _git(["rev-parse", "--show-toplevel"], code_dir if code_dir.is_dir() else code_dir.parent)
    except FileNotFoundError:
        info["error"] = "git is not installed"
        return info
    except subprocess.TimeoutExpired:
        info["error"] = "git timed out"
        return info
    if top.returncode != 0:
        info["error"] = NOT_A_REPO
        return info
    root = Path(top.stdout.decode().strip())
    head = _git(["rev-parse", "HEAD"], root)
    if head.returncode == 0:
        info["commit"] = head.stdout.decode().strip()
    else:
        info["error"] = "no commits yet"
    status = _git(["status", "--porcelain"], root)
    info["dirty"] = bool(status.stdout.strip())
    if info["dirty"]:
        info["diff_sha256"] = _diff_sha256(root, has_head=info["commit"] is not None)
        untracked = _git(["ls-files", "--others", "--exclude-standard", "-z"], root).stdout
        info["untracked"] = len([p for p in untracked.split(b"\0") if p])
    return info


def _diff_sha256(root: Path, *, has_head: bool) -> Optional[str]:
    h = hashlib.sha256()
    if has_head:
        h.update(_git(["diff", "HEAD", "--binary"], root).stdout)
    untracked = _git(["ls-files", "--others", "--exclude-standard", "-z"], root).stdout
    for rel in sorted(p for p in untracked.split(b"\0") if p):
        path = root / os.fsdecode(rel)
        h.update(b"\0untracked\0" + rel + b"\0")
        if not path.is_file() or path.is_symlink():
            continue
        size = path.stat().st_size
        if size > MAX_HASHED_BYTES:
            h.update(f"size={size}".encode())
        else:
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()


@functools.lru_cache(maxsize=1)
def imported_code_version() -> tuple[tuple[str, Any], ...]:
    """``git_info`` of the tree this package was imported from, read once per process: a process runs
    the code it imported (a forked trial, what its fork server imported before forking), so a later
    edit of the tree would describe code it does not run. Items, so the cached value cannot be changed."""
    return tuple(git_info(PACKAGE_ROOT).items())
