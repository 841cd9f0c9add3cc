"""Shared fixtures: every test runs offline, in a temporary cache, on tiny configs."""

from __future__ import annotations

import os

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
