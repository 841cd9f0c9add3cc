"""Shared fixtures: every test runs offline, in a temporary cache, on tiny configs."""

from __future__ import annotations

import os
from pathlib import Path

# Every process a test starts (a campaign, a trial, a CLI) imports this checkout, whatever its
# working directory and whichever copy of the package is installed.
_ROOT = str(Path(__file__).resolve().parents[1])
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, os.environ.get("PYTHONPATH", "")) if p)
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Tiny models on a shared 2-core machine run several times faster on one thread (also in the
# trial processes the tests start); results are deterministic either way.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest

# Overrides that shrink the default experiment to a second of CPU work.
TINY = ["model=tiny", "trainer=smoke", "logger=none"]


@pytest.fixture(scope="session")
def data_cache(tmp_path_factory) -> str:
    """One prepared-data cache for the whole session (preparing Shakespeare takes a few seconds)."""
    path = os.environ.get("AUTORESEARCH_TEST_CACHE") or str(tmp_path_factory.mktemp("cache"))
    return path


@pytest.fixture(autouse=True)
def _isolated_cache(monkeypatch, data_cache):
    monkeypatch.setenv("AUTORESEARCH_CACHE", data_cache)


@pytest.fixture
def tiny_overrides() -> list[str]:
    return list(TINY)


@pytest.fixture
def store(tmp_path):
    """An empty KnowledgeStore in the test's temporary directory."""
    from autoresearch.store import KnowledgeStore

    s = KnowledgeStore(tmp_path / "knowledge.sqlite")
    yield s
    s.close()


@pytest.fixture
def project_clone(tmp_path):
    """The source tree a user would clone — code, conf, pipeline files, no outputs — as a fresh git +
    DVC repository, for tests that run the README's commands where a user would."""
    import shutil
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    repo = tmp_path / "clone"
    repo.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("autoresearch", "conf", "search_spaces"):
        shutil.copytree(root / name, repo / name, symlinks=True, ignore=ignore)
    for name in ("dvc.yaml", "params.yaml", ".dvcignore", "pyproject.toml"):
        shutil.copy2(root / name, repo / name)
    (repo / "discoveries").mkdir()
    (repo / "discoveries" / ".gitkeep").touch()
    (repo / ".gitignore").write_text("/outputs/\n__pycache__/\n")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "project"]):
        if shutil.which(cmd[0]) is not None:
            subprocess.run(cmd, cwd=repo, env=env, check=True, capture_output=True)
    return repo
