"""The executor a config asks for."""

from __future__ import annotations

from typing import Optional

from autoresearch.config.executor import ExecutorConfig
from autoresearch.executor.base import Executor


def make_executor(config: ExecutorConfig, *, warm: bool = True, env: Optional[dict[str, str]] = None) -> Executor:
    """``executor.kind``'s executor; ``warm`` forks local trials from a fork server per worker; ``env``
    is added to local trial processes' environment (a Ray trial's is its node's)."""
    if config.kind == "ray":
        from autoresearch.executor.remote import RayExecutor  # Ray is imported only here

        return RayExecutor(config)
    from autoresearch.executor.local import LocalExecutor

    return LocalExecutor(config, warm=warm, env=env)
