"""The ``autoresearch`` console script: the same Hydra app as ``python -m autoresearch``."""

from autoresearch.__main__ import main

__all__ = ["main"]
