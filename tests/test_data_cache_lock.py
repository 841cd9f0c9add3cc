"""Issue 15: the data-cache build lock is ``filelock``'s, so it is a real lock on every platform
(it was a no-op wherever ``fcntl`` is missing, as on Windows)."""

from __future__ import annotations

import sys
import threading

from autoresearch.data.cache import build_lock


def test_the_build_lock_is_real_and_exclusive_even_without_fcntl(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "fcntl", None)  # `import fcntl` now fails, as on Windows
    path = tmp_path / "cache" / ".key.lock"
    order: list[str] = []
    with build_lock(path) as exclusive:
        assert exclusive
        waiter = threading.Thread(target=lambda: _take(path, order))
        waiter.start()
        waiter.join(timeout=1.0)  # a second taker must wait for us (not a timed assertion: only order is checked)
        order.append("first released")
    waiter.join()
    assert order == ["first released", "second acquired"]


def _take(path, order):
    with build_lock(path):
        order.append("second acquired")
