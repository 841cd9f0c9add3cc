"""The reproducibility bundle: everything needed to rerun one trial and check the rerun.

``<run_dir>/bundle/`` holds::

    config.yaml              the resolved config (secrets redacted)
    overrides.yaml           the overrides that produced it
    seeds.json               every seed the run used and how each derives from the run seed
    git.json                 commit, dirty flag, sha256 of the uncommitted difference
    data.json                the prepared data's manifest sha256 (and the data config)
    requirements.lock        ``pip freeze`` of the interpreter that ran it
    lock.sha256              its sha256, in ``sha256sum -c`` format
    environment.json         Python, platform, torch/CUDA/cuDNN, CPU, GPU, key library versions
    Dockerfile               rebuilds that environment; its CMD reruns this bundle
    Dockerfile.dockerignore  keeps outputs and data out of the build context
    requirements.docker.txt  the lock minus torch and the project (installed separately)
    metrics.json             the recorded result, once the run has one (``finalize_bundle``)
    extra.json               whatever the caller adds (campaign, trial id, ...)
    bundle.json              index: a summary and the sha256 of every file above

``bundle.json`` is written last and removed first, so its presence means a complete bundle.
No secret is written anywhere: every value passes the project's one scrubber (``autoresearch.safety``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import yaml

from autoresearch.provenance.dockerfile import DOCKER_REQUIREMENTS, DOCKERIGNORE, docker_requirements, render_dockerfile
from autoresearch.provenance.environment import environment_info, pip_freeze
from autoresearch.provenance.git import git_info, imported_code_version
from autoresearch.safety import scrub, scrub_text, secret_values

log = logging.getLogger(__name__)

BUNDLE_DIR = "bundle"
BUNDLE_INDEX = "bundle.json"
LOCK_FILE = "requirements.lock"
LOCK_SHA_FILE = "lock.sha256"
METRICS_FILE = "metrics.json"
FORMAT_VERSION = 1


class BundleError(ValueError):
    """A bundle that is missing, incomplete or altered; the message names the file."""


def file_sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def derive_seeds(seed: int, *, split_seed: Optional[int] = None) -> dict[str, Any]:
    """Every seed a run uses, from its one run seed (mirrors ``train.seed_everything`` and the
    trainer's samplers; tests/test_repro_bundle.py checks the two agree)."""
    return {
        "run_seed": seed,
        "python": seed,
        "numpy": seed % 2**32,
        "torch": seed,
        "batch_sampler": seed,
        "sharpness_sampler": seed + 1,
        "sharpness_probes": seed + 2,
        "data_split_seed": split_seed,
        "derivation": (
            "autoresearch.train.seed_everything(run_seed): random.seed(run_seed); "
            "numpy.random.seed(run_seed % 2**32); torch.manual_seed(run_seed) (CPU and every CUDA device). "
            "Training batches are drawn by BatchSampler(seed=run_seed); sharpness estimates by "
            "BatchSampler(seed=run_seed + 1) and torch.Generator().manual_seed(run_seed + 2). "
            "The document split uses data.split_seed, independent of the run seed."
        ),
    }


def _resolved_device(config: dict, env: dict) -> str:
    device = str((config.get("trainer") or {}).get("device", "auto"))
    if device != "auto":
        return device
    if env.get("cuda_available"):
        return "cuda"
    return "mps" if env.get("mps_available") else "cpu"


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def write_bundle(
    run_dir: Path,
    *,
    config: dict,
    overrides: list[str],
    seed: int,
    data_manifest_sha256: str,
    extra: dict | None = None,
    code_dir: Path | None = None,
) -> Path:
    """Write ``run_dir/bundle/`` (see the module docstring) and return its path.

    Cheap after the first call in a process (the ``pip freeze`` is cached), so a campaign can
    bundle every trial. Calling it again rewrites the bundle. ``code_dir`` is the source tree
    whose commit is recorded (default: the tree this package was imported from).
    """
    run_dir = Path(run_dir)
    bundle = run_dir / BUNDLE_DIR
    bundle.mkdir(parents=True, exist_ok=True)
    (bundle / BUNDLE_INDEX).unlink(missing_ok=True)
    secrets = secret_values()

    config = scrub(config, secrets)
    overrides = scrub(list(overrides), secrets)
    (bundle / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False, default_flow_style=False))
    (bundle / "overrides.yaml").write_text(yaml.safe_dump(overrides, default_flow_style=False))
    split_seed = (config.get("data") or {}).get("split_seed")
    _write_json(bundle / "seeds.json", derive_seeds(seed, split_seed=split_seed))

    git = git_info(Path(code_dir)) if code_dir else dict(imported_code_version())
    _write_json(bundle / "git.json", git)
    _write_json(bundle / "data.json", {"manifest_sha256": data_manifest_sha256, "data": config.get("data")})

    freeze, how = pip_freeze()
    lock = scrub_text(freeze, secrets)
    (bundle / LOCK_FILE).write_text(lock, encoding="utf-8")
    lock_sha = file_sha256(bundle / LOCK_FILE)
    (bundle / LOCK_SHA_FILE).write_text(f"{lock_sha}  {LOCK_FILE}\n")

    env = scrub(environment_info(), secrets)
    env["lock_source"] = how
    _write_json(bundle / "environment.json", env)

    device = _resolved_device(config, env)
    run_name = str(config.get("name") or run_dir.name)
    (bundle / "Dockerfile").write_text(render_dockerfile(env=env, lock_text=lock, git=git, run_name=run_name, device=device))
    (bundle / "Dockerfile.dockerignore").write_text(DOCKERIGNORE)
    (bundle / DOCKER_REQUIREMENTS).write_text(docker_requirements(lock))

    if extra:
        _write_json(bundle / "extra.json", scrub(extra, secrets))
    if (run_dir / METRICS_FILE).is_file():
        shutil.copyfile(run_dir / METRICS_FILE, bundle / METRICS_FILE)

    summary = {
        "format_version": FORMAT_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "run_name": run_name,
        "seed": seed,
        "budget": (config.get("trainer") or {}).get("budget"),
        "device": device,
        "git_commit": git["commit"],
        "git_dirty": git["dirty"],
        "lock_sha256": lock_sha,
        "data_manifest_sha256": data_manifest_sha256,
    }
    _index(bundle, summary)
    log.info("bundle written: %s (commit %s%s)", bundle, (git["commit"] or git["error"] or "?")[:12],
             ", dirty" if git["dirty"] else "")
    return bundle


def _index(bundle: Path, summary: dict) -> None:
    files = {p.name: file_sha256(p) for p in sorted(bundle.iterdir()) if p.is_file() and p.name != BUNDLE_INDEX}
    _write_json(bundle / BUNDLE_INDEX, {**summary, "files": files})


def finalize_bundle(run_dir: Path) -> Path:
    """Copy the run's ``metrics.json`` into its bundle and re-index it, so the bundle alone (a
    Docker image holds nothing else) carries the result a rerun is compared with."""
    run_dir = Path(run_dir)
    bundle = find_bundle(run_dir)
    metrics = run_dir / METRICS_FILE
    if not metrics.is_file():
        raise BundleError(f"{metrics}: no such file (the run has not finished)")
    shutil.copyfile(metrics, bundle / METRICS_FILE)
    index = load_index(bundle)
    index.pop("files", None)
    _index(bundle, index)
    return bundle


def find_bundle(path: Path) -> Path:
    """The bundle directory for ``path``: a bundle itself or a run directory holding one."""
    path = Path(path)
    for candidate in (path, path / BUNDLE_DIR):
        if (candidate / BUNDLE_INDEX).is_file():
            return candidate
    if (path / BUNDLE_DIR).is_dir() or path.name == BUNDLE_DIR:
        raise BundleError(f"{path}: bundle is incomplete (no {BUNDLE_INDEX}; the run stopped while writing it?)")
    raise BundleError(f"{path}: neither a bundle nor a run directory holding {BUNDLE_DIR}/{BUNDLE_INDEX}")


def load_index(bundle: Path) -> dict:
    path = Path(bundle) / BUNDLE_INDEX
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise BundleError(f"{path}: unreadable ({err})") from None


def check_bundle(path: Path) -> list[str]:
    """Problems with a bundle: files missing or changed since indexing, a lock that does not
    match its ``lock.sha256``. Empty when intact."""
    bundle = find_bundle(path)
    index = load_index(bundle)
    problems = []
    for name, digest in index.get("files", {}).items():
        file = bundle / name
        if not file.is_file():
            problems.append(f"{file}: missing")
        elif file_sha256(file) != digest:
            problems.append(f"{file}: changed since the bundle was written (sha256 differs from {BUNDLE_INDEX})")
    lock_sha_file = bundle / LOCK_SHA_FILE
    if lock_sha_file.is_file() and (bundle / LOCK_FILE).is_file():
        recorded = lock_sha_file.read_text().split()[0]
        if recorded != file_sha256(bundle / LOCK_FILE):
            problems.append(f"{bundle / LOCK_FILE}: does not match {LOCK_SHA_FILE}")
    return problems


def current_lock_sha256() -> str:
    """sha256 of this interpreter's lock, redacted exactly as a bundle would write it."""
    freeze, _ = pip_freeze()
    return hashlib.sha256(scrub_text(freeze, secret_values()).encode()).hexdigest()
