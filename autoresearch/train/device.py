"""Device choice, peak FLOP/s for MFU, and peak memory — the machine-facing parts of training."""

from __future__ import annotations

import json
import logging
import os
import platform
import resource
import time
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

PEAK_FLOPS_MEASUREMENTS = 5  # CPU peak: processes that measure it before the cached best stands

# Dense bf16 tensor-core peak (FLOP/s) by GPU name fragment; first match wins.
GPU_PEAK_FLOPS: tuple[tuple[str, float], ...] = (
    ("H200", 989e12),
    ("H100 PCIe", 756e12),
    ("H100", 989e12),
    ("A100", 312e12),
    ("A10G", 125e12),
    ("A10", 125e12),
    ("L40S", 362e12),
    ("L4", 121e12),
    ("RTX 4090", 165e12),
    ("RTX 3090", 71e12),
    ("V100", 125e12),
    ("T4", 65e12),
)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("trainer.device=cuda but no CUDA device is visible; use trainer.device=auto or cpu")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise RuntimeError("trainer.device=mps but MPS is not available; use trainer.device=auto or cpu")
    return torch.device(name)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def tune_allocator() -> bool:
    """glibc: keep freed blocks up to 32 MiB in the heap and never trim it.

    By default every large activation is a fresh mmap whose pages fault in on first touch, which on
    CPU costs more than many of the kernels themselves (bench/model_step.py --malloc tuned: +10 %
    at 4×128). Process-wide, so it is called by whoever owns the process: the run entry points.
    """
    import ctypes

    if platform.system() != "Linux":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(libc.mallopt(m_mmap_threshold, 32 << 20) and libc.mallopt(m_trim_threshold, 1 << 30))


def measure_cpu_peak_flops(seconds: float = 0.15, n: int = 512) -> float:
    """fp32 matmul throughput with the current thread count: the CPU's practical peak."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        reps += 1
    return 2 * n**3 * reps / (time.perf_counter() - start)


def peak_flops(device: torch.device, override: float = 0.0, cache_dir: Path | None = None) -> float:
    """Peak FLOP/s for MFU: the override, a table for GPUs, or a measured (and cached) CPU matmul peak."""
    if override > 0:
        return override
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for fragment, flops in GPU_PEAK_FLOPS:
            if fragment in name:
                return flops
        log.warning("no peak FLOP/s known for %s; set trainer.peak_flops for a meaningful MFU", name)
        return float("nan")
    if device.type != "cpu":
        return float("nan")
    key = f"{_cpu_model()}|threads={torch.get_num_threads()}"
    path = (cache_dir / "peak_flops.json") if cache_dir else None
    cached: dict[str, Any] = {}
    if path and path.is_file():
        try:
            cached = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            cached = {}
    entry = cached.get(key)
    if isinstance(entry, (int, float)):  # the cache's first format: the best value alone
        entry = {"peak": float(entry), "measurements": 1}
    entry = entry if isinstance(entry, dict) else {"peak": 0.0, "measurements": 0}
    # The best of the first few processes' measurements is kept: one measurement on a busy
    # machine must not fix a low peak (and an MFU above 100 %) for good. After that the cached
    # figure stands, so a trial does not pay 0.15 s of matmuls to restate it.
    if entry["measurements"] < PEAK_FLOPS_MEASUREMENTS:
        entry = {"peak": max(entry["peak"], measure_cpu_peak_flops()), "measurements": entry["measurements"] + 1}
        cached[key] = entry
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(cached, indent=1))
            tmp.replace(path)
    return float(entry["peak"])


def peak_memory_mb(device: torch.device) -> float:
    """Peak accelerator memory, or this process's peak resident set size on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss_kb / 1024 if platform.system() != "Darwin" else rss_kb / 2**20
