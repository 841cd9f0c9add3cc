"""Rerun a bundle and say, with a stated tolerance, whether the result came back.

Tolerances (absolute, in bits per byte):

* ``1e-6`` — a CPU run with a steps, tokens or flops budget. The same ops run in the same order
  on the same data, so the result is bitwise-equal on the same machine; 1e-6 leaves room only
  for printing and summation noise.
* ``5e-3`` — the same deterministic budget on a GPU (or on another device than recorded):
  atomics and autotuned kernels reorder floating-point sums, and bf16 rounds them.
* ``0.02`` — a seconds budget. How many steps fit in the time depends on the machine and its
  load, so the rerun trains a different number of steps; 0.02 bpb is roughly the step-to-step
  spread of a short run's final loss. ``promote`` converts such trials to a steps budget so that
  discoveries reproduce at 1e-6.

A bundle may come from elsewhere, so it is read as untrusted data: its config and overrides are
plain YAML that must hold no interpolation (``${…}`` is refused, never resolved: an
``${oc.env:…}`` would read this machine's environment), its name only labels the rerun's
directory (sanitised, and the directory stays under ``outputs/repro/`` unless ``--out`` says
otherwise), and where data is cached and where curves are logged are this machine's choices.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Optional

import yaml

from autoresearch.provenance.bundle import (
    BUNDLE_DIR,
    METRICS_FILE,
    BundleError,
    check_bundle,
    current_lock_sha256,
    find_bundle,
    load_index,
)
from autoresearch.provenance.git import PACKAGE_ROOT, git_info
from autoresearch.safety import safe_name

log = logging.getLogger(__name__)

DETERMINISTIC_TOLERANCE = 1e-6
DEVICE_TOLERANCE = 5e-3
SECONDS_TOLERANCE = 0.02
DETERMINISTIC_BUDGETS = ("steps", "tokens", "flops")
COMPARED_METRICS = ("val_bpb", "test_bpb")
REPORT_FILE = "reproduce.json"
REPRO_ROOT = Path("outputs") / "repro"
MAX_BUNDLE_YAML_BYTES = 1 << 20  # a resolved config is a few kB
MAX_YAML_NODES = 100_000  # bounds the walk of a file built from YAML aliases


@dataclass(kw_only=True)
class ReproReport:
    """The outcome of a rerun: what was recorded, what came back, and whether they agree."""

    recorded: dict[str, Any]
    reproduced: dict[str, Any]
    tolerance: float
    match: bool
    notes: list[str] = field(default_factory=list)
    tolerance_reason: str = ""
    differences: dict[str, float] = field(default_factory=dict)
    run_dir: Optional[str] = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        lines = [f"{'reproduced' if self.match else 'NOT reproduced'} (tolerance {self.tolerance:g} bpb: {self.tolerance_reason})"]
        for key, diff in self.differences.items():
            lines.append(f"  {key}: recorded {self.recorded[key]:.6f}  reproduced {self.reproduced[key]:.6f}  |diff| {diff:.2e}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _device_kind(device: str | None) -> str:
    return str(device or "cpu").split(":")[0]


def default_tolerance(budget_kind: str, recorded_device: str, rerun_device: str | None = None) -> tuple[float, str]:
    """``(tolerance, why)`` for a rerun of a run with this budget on this device (see module doc)."""
    if budget_kind not in DETERMINISTIC_BUDGETS:
        return SECONDS_TOLERANCE, f"a {budget_kind} budget trains a machine-dependent number of steps"
    recorded, rerun = _device_kind(recorded_device), _device_kind(rerun_device or recorded_device)
    if recorded != rerun:
        return DEVICE_TOLERANCE, f"recorded on {recorded}, rerun on {rerun}: kernels differ"
    if recorded != "cpu":
        return DEVICE_TOLERANCE, f"{budget_kind} budget on {recorded}: kernel sums are not ordered deterministically"
    return DETERMINISTIC_TOLERANCE, f"{budget_kind} budget on CPU: deterministic"


def recorded_metrics(bundle: Path) -> tuple[dict, Path]:
    """The result a bundle is compared with: its own copy, else its run directory's."""
    for path in (bundle / METRICS_FILE, bundle.parent / METRICS_FILE):
        if path.is_file():
            try:
                metrics = json.loads(path.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
                raise BundleError(f"{path}: not valid JSON ({type(err).__name__}: {err})") from None
            if not isinstance(metrics, dict):
                raise BundleError(f"{path}: expected a JSON object, got {type(metrics).__name__}")
            for key in COMPARED_METRICS:
                value = metrics.get(key)
                if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                    raise BundleError(f"{path}: {key} must be a number, got {type(value).__name__}")
            return metrics, path
    raise BundleError(f"{bundle}: no recorded {METRICS_FILE} in the bundle or its run directory "
                      "(the run did not finish, or the bundle was copied without finalize_bundle)")


def compare(recorded: dict, reproduced: dict, tolerance: float) -> tuple[bool, dict[str, float], list[str]]:
    """Compare ``val_bpb`` (and ``test_bpb`` when recorded) within ``tolerance``."""
    diffs: dict[str, float] = {}
    notes: list[str] = []
    ok = True
    for key in COMPARED_METRICS:
        want = recorded.get(key)
        if want is None:
            continue
        got = reproduced.get(key)
        if got is None:
            notes.append(f"{key} was recorded but the rerun has none")
            ok = False
            continue
        if isinstance(want, float) and math.isnan(want):
            ok = ok and isinstance(got, float) and math.isnan(got)
            notes.append(f"{key} recorded as NaN")
            continue
        diffs[key] = abs(float(got) - float(want))
        ok = ok and diffs[key] <= tolerance
    if "val_bpb" not in diffs and not any("val_bpb" in n for n in notes):
        notes.append("no val_bpb recorded: nothing to compare")
        ok = False
    if recorded.get("status") and reproduced.get("status") and recorded["status"] != reproduced["status"]:
        notes.append(f"status differs: recorded {recorded['status']}, rerun {reproduced['status']}")
    return ok, diffs, notes


def provenance_notes(bundle: Path, rerun_bundle: Optional[Path]) -> list[str]:
    """Warnings when the rerun's code, lock or data differ from the recorded ones."""
    index = load_index(bundle)
    notes = [f"bundle altered: {p}" for p in check_bundle(bundle)]
    if rerun_bundle is not None and (rerun_bundle / "bundle.json").is_file():
        now = load_index(rerun_bundle)
        now_commit, now_dirty, now_lock, now_data = now["git_commit"], now["git_dirty"], now["lock_sha256"], now["data_manifest_sha256"]
    else:
        git = git_info(PACKAGE_ROOT)
        now_commit, now_dirty, now_lock, now_data = git["commit"], git["dirty"], current_lock_sha256(), None
    if index.get("git_commit") != now_commit:
        notes.append(f"git commit differs: recorded {index.get('git_commit')}, now {now_commit}")
    elif index.get("git_dirty") or now_dirty:
        notes.append("same commit, but a working tree was dirty: compare diff_sha256 in the two git.json files")
    if index.get("lock_sha256") != now_lock:
        notes.append("package lock differs from the recorded requirements.lock (compare with pip freeze)")
    if now_data is not None and index.get("data_manifest_sha256") != now_data:
        notes.append(f"prepared data differs: manifest sha256 recorded {index.get('data_manifest_sha256')}, now {now_data}")
    for note in notes:
        log.warning("%s", note)
    return notes


def _interpolation(value: Any, where: str, budget: list[int]) -> Optional[tuple[str, str]]:
    """``(key, text)`` of the first string holding ``${`` in a YAML value, or None."""
    budget[0] -= 1
    if budget[0] < 0:
        raise BundleError(f"{where}: more than {MAX_YAML_NODES} values (YAML aliases?): not a bundle's config")
    if isinstance(value, str):
        return (where, value) if "${" in value else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        if isinstance(key, str) and "${" in key:
            return f"{where}.{key}", key
        found = _interpolation(child, f"{where}[{key}]" if isinstance(value, list) else f"{where}.{key}", budget)
        if found:
            return found
    return None


def _untrusted_yaml(path: Path, kind: type) -> Any:
    """A bundle file as plain data: bounded size, YAML's safe loader, no interpolation anywhere."""
    try:
        if path.stat().st_size > MAX_BUNDLE_YAML_BYTES:
            raise BundleError(f"{path}: larger than {MAX_BUNDLE_YAML_BYTES} bytes: not a bundle's file")
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise BundleError(f"{path}: unreadable ({type(err).__name__}: {err})") from None
    data = kind() if data is None else data
    if not isinstance(data, kind):
        raise BundleError(f"{path}: expected a YAML {kind.__name__}, got {type(data).__name__}")
    found = _interpolation(data, path.stem, [MAX_YAML_NODES])
    if found:
        key, text = found
        raise BundleError(
            f"{path}: {key} holds an interpolation ({text[:80]!r}); a bundle is data and is never "
            "interpolated (autoresearch writes resolved values only): refusing to rerun it"
        )
    return data


def load_bundle_config(bundle: Path) -> tuple[Any, list[str]]:
    """``(ExperimentConfig, overrides)`` of a bundle, read as untrusted data (see the module doc)."""
    from autoresearch.config import DataConfig, to_experiment_config

    raw = _untrusted_yaml(bundle / "config.yaml", dict)
    overrides = _untrusted_yaml(bundle / "overrides.yaml", list)
    if not all(isinstance(o, str) for o in overrides):
        raise BundleError(f"{bundle / 'overrides.yaml'}: must be a list of strings")
    cfg = to_experiment_config(raw, file=str(bundle / "config.yaml"))
    # Where prepared data is cached changes nothing it contains (the manifest hash checks that),
    # and curves need not go where the bundle's author sent them.
    cfg.data.cache_dir = os.environ.get("AUTORESEARCH_CACHE") or DataConfig().cache_dir
    cfg.logger.kind = "none"
    return cfg, overrides


def reproduce(bundle_or_run_dir: Path, *, out_dir: Path | None = None, tolerance: float | None = None) -> ReproReport:
    """Rerun the bundle's config in a fresh run directory and compare with the recorded metrics.

    ``out_dir`` defaults to ``outputs/repro/<run name>-<time>``. ``tolerance`` defaults to
    ``default_tolerance`` (1e-6 for CPU runs with a deterministic budget). The report is also
    written to ``<out_dir>/reproduce.json``.
    """
    from autoresearch.experiment import evaluate_test, run_experiment

    bundle = find_bundle(Path(bundle_or_run_dir))
    recorded, recorded_path = recorded_metrics(bundle)
    cfg, overrides = load_bundle_config(bundle)
    if recorded.get("test_bpb") is not None:
        cfg.trainer.save_checkpoint = True
    if out_dir is None:
        out_dir = REPRO_ROOT / f"{safe_name(cfg.name, default='bundle')}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
        if not out_dir.resolve().is_relative_to(REPRO_ROOT.resolve()):  # safe_name makes this hold; kept as the rule
            raise BundleError(f"{bundle}: its name {cfg.name!r} would put the rerun outside {REPRO_ROOT}")
    out_dir = Path(out_dir)
    log.info("reproducing %s (recorded %s) in %s", bundle, recorded_path, out_dir)

    result = run_experiment(cfg, out_dir, overrides=list(overrides))
    reproduced = result.to_dict()
    if recorded.get("test_bpb") is not None and result.status == "completed":
        reproduced["test_bpb"] = evaluate_test(out_dir)

    if tolerance is None:
        tolerance, reason = default_tolerance(cfg.trainer.budget.kind, recorded.get("device", "cpu"), reproduced.get("device"))
    else:
        reason = "given"
    match, diffs, notes = compare(recorded, reproduced, tolerance)
    rerun_bundle = out_dir / BUNDLE_DIR
    notes += provenance_notes(bundle, rerun_bundle if rerun_bundle.is_dir() else None)
    report = ReproReport(recorded=recorded, reproduced=reproduced, tolerance=tolerance, match=match, notes=notes,
                         tolerance_reason=reason, differences=diffs, run_dir=str(out_dir))
    (out_dir / REPORT_FILE).write_text(json.dumps(report.to_dict(), indent=2, default=float) + "\n")
    log.info("%s: %s within %g bpb (%s)", out_dir, "reproduced" if match else "NOT reproduced", tolerance, reason)
    return report
