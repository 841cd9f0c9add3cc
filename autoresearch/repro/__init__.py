"""Reproducibility: reruns that say whether a result came back, and discoveries that ``dvc repro``
re-trains. The bundle every trial writes lives in ``autoresearch.provenance`` (a lower room that
``experiment`` imports too); its public names are re-exported here.

* ``write_bundle(run_dir, config=..., overrides=..., seed=..., data_manifest_sha256=...)`` —
  ``run_dir/bundle/``: config, seeds, git state, data hash, ``pip freeze`` lock, hardware and a
  Dockerfile that reruns the trial (``finalize_bundle`` adds the result once it exists).
* ``reproduce(path)`` — rerun a bundle and compare val_bpb/test_bpb within a stated tolerance.
* ``promote(source, name)`` — freeze a trial as ``discoveries/<name>.yaml`` for ``dvc repro``;
  ``train_discovery`` is the DVC stage's command.

CLI: ``python -m autoresearch.repro {promote,reproduce,train-discovery,bundle-check}``.
"""

from autoresearch.provenance import (
    LOCK_FILE_ENV,
    BundleError,
    check_bundle,
    derive_seeds,
    finalize_bundle,
    find_bundle,
    pip_freeze,
    write_bundle,
)
from autoresearch.repro.discovery import Discovery, DiscoveryError, promote, register, train_discovery
from autoresearch.repro.reproduce import (
    DETERMINISTIC_TOLERANCE,
    DEVICE_TOLERANCE,
    SECONDS_TOLERANCE,
    ReproReport,
    default_tolerance,
    reproduce,
)
from autoresearch.safety import REDACTED, secret_env_names

__all__ = [
    "LOCK_FILE_ENV",
    "pip_freeze",
    "DETERMINISTIC_TOLERANCE",
    "DEVICE_TOLERANCE",
    "REDACTED",
    "SECONDS_TOLERANCE",
    "BundleError",
    "Discovery",
    "DiscoveryError",
    "ReproReport",
    "check_bundle",
    "default_tolerance",
    "derive_seeds",
    "finalize_bundle",
    "find_bundle",
    "promote",
    "register",
    "reproduce",
    "secret_env_names",
    "train_discovery",
    "write_bundle",
]
