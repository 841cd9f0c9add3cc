"""Provenance: the bundle every run writes (config, seeds, git state, data hash, package lock,
hardware, a Dockerfile), and what it is made from.

A low room: ``experiment`` writes a bundle for every run, and ``repro`` (which reruns bundles and
so runs experiments) reads them; both import this package, which imports neither.
"""

from autoresearch.provenance.bundle import (
    BUNDLE_DIR,
    BUNDLE_INDEX,
    BundleError,
    check_bundle,
    current_lock_sha256,
    derive_seeds,
    file_sha256,
    finalize_bundle,
    find_bundle,
    load_index,
    write_bundle,
)
from autoresearch.provenance.environment import LOCK_FILE_ENV, environment_info, library_versions, pip_freeze
from autoresearch.provenance.git import git_info, imported_code_version

__all__ = [
    "BUNDLE_DIR",
    "BUNDLE_INDEX",
    "LOCK_FILE_ENV",
    "BundleError",
    "check_bundle",
    "current_lock_sha256",
    "derive_seeds",
    "environment_info",
    "file_sha256",
    "finalize_bundle",
    "find_bundle",
    "git_info",
    "imported_code_version",
    "library_versions",
    "load_index",
    "pip_freeze",
    "write_bundle",
]
