"""Discoveries: a trial promoted to ``discoveries/<name>.yaml`` and re-trained by ``dvc repro``.

``promote`` freezes what a trial was (its resolved config, overrides, seed and budget), what it
measured, and where it came from (campaign, trial, commit, data manifest), and registers the
name in ``params.yaml``, where the DVC stage ``discovery`` iterates over it. ``train_discovery``
is that stage's command: it re-trains the frozen config and writes ``metrics.json``
(val_bpb, test_bpb) and the curves as CSV for ``dvc metrics`` and ``dvc plots``.

A discovery always has a deterministic budget, so ``dvc repro`` on CPU reproduces it to 1e-6.
A trial that ran on a seconds budget is converted to the steps it actually trained
(``num_steps`` in its metrics.json); since a steps schedule is not the seconds schedule, promote
re-runs it once under the steps budget and records *that* run's metrics (the trial's own are
kept under ``original``), so the recorded numbers are ones a rerun can match exactly.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import re
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Optional

import yaml

from autoresearch.provenance.bundle import BUNDLE_DIR, BundleError, load_index
from autoresearch.provenance.git import PACKAGE_ROOT, git_info
from autoresearch.repro.reproduce import ReproReport, compare, default_tolerance

log = logging.getLogger(__name__)

DISCOVERIES_DIR = "discoveries"
PARAMS_FILE = "params.yaml"
PARAMS_KEY = "discoveries"
PROMOTE_RUNS = Path("outputs") / "promote"
CACHE_DIR_DEFAULT = "${oc.env:AUTORESEARCH_CACHE,'~/.cache/autoresearch'}"
RECORDED_KEYS = ("status", "val_bpb", "test_bpb", "num_steps", "total_tokens_M", "device", "seed")
METRIC_KEYS = ("val_bpb", "test_bpb", "num_steps", "total_tokens_M")
TRAIN_CURVE, VAL_CURVE, METRICS, REPORT = "train_curve.csv", "val_curve.csv", "metrics.json", "reproduce.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
PARAMS_HEADER = (
    "# Promoted discoveries that `dvc repro` re-trains (stage discovery@<name> reads discoveries/<name>.yaml).\n"
    "# Managed by `python -m autoresearch.repro promote`; delete a name to drop its stage.\n"
)


class DiscoveryError(ValueError):
    """A promotion or discovery file that cannot be used; the message names the file and key."""


@dataclass(kw_only=True)
class Discovery:
    """The content of ``discoveries/<name>.yaml``. ``config`` is what gets trained; ``overrides``
    say how it differs from the defaults, for people."""

    name: str
    description: str = ""
    seed: int
    budget: dict[str, Any]
    overrides: list[str]
    config: dict[str, Any]
    recorded: dict[str, Any]
    original: Optional[dict[str, Any]] = None
    budget_converted: Optional[dict[str, Any]] = None
    provenance: dict[str, Any] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        header = (f"# Discovery '{self.name}': `dvc repro discovery@{self.name}` re-trains `config` and compares with\n"
                  "# `recorded`. Written by `python -m autoresearch.repro promote`; edit only `description`.\n")
        path.write_text(header + yaml.safe_dump(asdict(self), sort_keys=False, default_flow_style=False))

    @classmethod
    def load(cls, path: Path) -> "Discovery":
        path = Path(path)
        if not path.is_file():
            raise DiscoveryError(f"{path}: no such discovery file (promote one with `python -m autoresearch.repro promote`)")
        try:
            raw = yaml.safe_load(path.read_text())
        except yaml.YAMLError as err:
            raise DiscoveryError(f"{path}: not valid YAML ({err})") from None
        if not isinstance(raw, dict):
            raise DiscoveryError(f"{path}: expected a mapping of discovery fields")
        missing = [k for k in ("name", "seed", "budget", "overrides", "config", "recorded") if k not in raw]
        unknown = sorted(set(raw) - {f for f in cls.__dataclass_fields__})
        problems = [f"{path}: {k}: missing" for k in missing] + [f"{path}: {k}: unknown key" for k in unknown]
        if not missing and raw["budget"].get("kind") not in ("steps", "tokens", "flops"):
            problems.append(f"{path}: budget.kind: must be steps, tokens or flops for an exact rerun, got {raw['budget'].get('kind')!r}")
        if problems:
            raise DiscoveryError("\n".join(problems))
        return cls(**raw)


# --------------------------------------------------------------------------- promote
def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise DiscoveryError(f"discovery name {name!r}: use letters, digits, '_' and '-' (it names a file and a DVC stage)")


def _trial_dir(campaign_dir: Path, trial: str) -> Path:
    label = trial if trial.startswith("t") else f"t{int(trial):04d}" if trial.isdigit() else trial
    for candidate in (campaign_dir / "trials" / label, campaign_dir / label):
        if (candidate / "config.yaml").is_file():
            return candidate
    raise DiscoveryError(f"{campaign_dir}: no trial {trial!r} (looked for trials/{label}/config.yaml)")


def _finding_trial_dir(campaign_dir: Path, finding_id: int) -> tuple[Path, dict]:
    """The screening trial of a finding's hypothesis (its overrides, on the campaign's first seed)."""
    from autoresearch.config import load_config
    from autoresearch.store import KnowledgeStore

    configs = sorted(campaign_dir.glob("trials/*/config.yaml"))
    if not configs:
        raise DiscoveryError(f"{campaign_dir}: no trials/*/config.yaml (is this a campaign directory?)")
    db = Path(load_config(configs[0]).knowledge.db)
    with KnowledgeStore(db) as store:
        try:
            finding = store.finding(finding_id)
        except (KeyError, IndexError):
            raise DiscoveryError(f"{db}: no finding {finding_id}") from None
        if finding.status != "validated":
            log.warning("finding %d is %s, not validated", finding_id, finding.status)
        trials = [t for t in store.trials(finding.campaign_id) if t.hypothesis_id == finding.hypothesis_id
                  and t.status == "completed" and t.run_dir]
        if not trials:
            raise DiscoveryError(f"{db}: finding {finding_id} has no completed trial with a run directory")
        best = min(trials, key=lambda t: (t.kind != "hypothesis", t.id))
        return Path(best.run_dir), {"finding": finding_id, "finding_status": finding.status,
                                    "effect": finding.effect, "p_value": finding.p_value, "q_value": finding.q_value}


def _resolve_source(source: Path, trial: Optional[str], finding: Optional[int]) -> tuple[Path, dict]:
    source = Path(source)
    if trial is not None:
        run_dir, extra = _trial_dir(source, str(trial)), {}
    elif finding is not None:
        run_dir, extra = _finding_trial_dir(source, int(finding))
    else:
        run_dir, extra = source, {}
    for name in ("config.yaml", "metrics.json"):
        if not (run_dir / name).is_file():
            hint = " (for a campaign, pass --trial ID or --finding ID)" if (source / "trials").is_dir() else ""
            raise DiscoveryError(f"{run_dir / name}: no such file: not a finished run directory{hint}")
    campaign = run_dir.parent.parent if run_dir.parent.name == "trials" else None
    extra = {"campaign": campaign.name if campaign else None, "trial": run_dir.name if campaign else None, **extra}
    return run_dir, extra


def _portable_config(cfg: Any, name: str) -> dict:
    """The trial's config as a discovery trains it: no campaign section, its own name, weights
    saved (test_bpb is scored from them), the data cache wherever the machine keeps it."""
    import dataclasses

    from autoresearch.config import to_dict

    cfg = dataclasses.replace(cfg, campaign=None, name=name)
    cfg.trainer.save_checkpoint = True
    d = to_dict(cfg)
    d["data"]["cache_dir"] = CACHE_DIR_DEFAULT
    return d


def _provenance(run_dir: Path, source_extra: dict) -> dict:
    bundle = run_dir / BUNDLE_DIR
    prov: dict[str, Any] = {"source": str(run_dir), **source_extra}
    try:
        index = load_index(bundle)
        prov.update(git_commit=index.get("git_commit"), git_dirty=index.get("git_dirty"),
                    data_manifest_sha256=index.get("data_manifest_sha256"), lock_sha256=index.get("lock_sha256"))
    except BundleError:
        git = git_info(PACKAGE_ROOT)
        prov.update(git_commit=git["commit"], git_dirty=git["dirty"], data_manifest_sha256=None, lock_sha256=None,
                    note="the trial has no bundle; commit taken at promotion time")
    prov["promoted_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return prov


def _recorded(metrics: dict) -> dict:
    return {k: metrics.get(k) for k in RECORDED_KEYS}


def register(name: str, repo_root: Path) -> Path:
    """Add ``name`` to ``params.yaml``'s discoveries list (once) and return the file."""
    path = Path(repo_root) / PARAMS_FILE
    params: dict = {}
    if path.is_file():
        params = yaml.safe_load(path.read_text()) or {}
        if not isinstance(params, dict):
            raise DiscoveryError(f"{path}: expected a mapping with a '{PARAMS_KEY}' list")
    names = params.get(PARAMS_KEY) or []
    if not isinstance(names, list):
        raise DiscoveryError(f"{path}: {PARAMS_KEY}: expected a list of discovery names, got {type(names).__name__}")
    if name not in names:
        names.append(name)
    params[PARAMS_KEY] = names
    path.write_text(PARAMS_HEADER + yaml.safe_dump(params, sort_keys=False, default_flow_style=False))
    return path


def promote(source: Path, name: str, repo_root: Path = Path.cwd(), *, trial: str | None = None,
            finding: int | None = None, description: str = "") -> Path:
    """Freeze a finished trial as ``<repo_root>/discoveries/<name>.yaml`` and register it.

    ``source`` is a trial's run directory, or a campaign directory with ``trial`` (``t0007`` or
    ``7``) or ``finding`` (a finding id: its hypothesis's screening trial). A seconds budget is
    converted to the steps the trial trained and re-run once under it (see module doc).
    Promoting the same name again replaces its file; registration is idempotent.
    """
    from autoresearch.config import load_config, to_experiment_config

    _check_name(name)
    repo_root = Path(repo_root)
    run_dir, source_extra = _resolve_source(Path(source), trial, finding)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    if metrics.get("status") != "completed":
        raise DiscoveryError(f"{run_dir / 'metrics.json'}: status is {metrics.get('status')!r}; only a completed run can be promoted")
    from autoresearch.experiment import CHECKPOINT_FILE, evaluate_test, read_overrides, run_experiment  # torch: after the checks

    cfg = load_config(run_dir / "config.yaml")
    overrides = [o for o in read_overrides(run_dir) if not o.lstrip("+~").startswith(("campaign", "hydra"))]
    config = _portable_config(cfg, name)
    budget = dict(config["trainer"]["budget"])
    converted = None
    original = None
    if budget["kind"] not in ("steps", "tokens", "flops"):
        steps = int(metrics.get("num_steps") or 0)
        if steps <= 0:
            raise DiscoveryError(f"{run_dir / 'metrics.json'}: num_steps is {steps}: cannot convert its {budget['kind']} budget to steps")
        converted = {"from": budget, "to": {"kind": "steps", "value": steps},
                     "reason": f"a {budget['kind']} budget is not reproducible; the trial trained {steps} steps, "
                               "re-run once under that steps budget to record metrics a rerun can match"}
        budget = {"kind": "steps", "value": steps}
        config["trainer"]["budget"] = budget
        overrides = [o for o in overrides if not o.lstrip("+~").startswith("trainer.budget")]
        overrides += ["trainer.budget.kind=steps", f"trainer.budget.value={steps}"]
        original = _recorded(metrics)
        ref_dir = repo_root / PROMOTE_RUNS / name
        shutil.rmtree(ref_dir, ignore_errors=True)
        log.info("promote %s: %s budget → %d steps; re-running once in %s", name, converted["from"]["kind"], steps, ref_dir)
        result = run_experiment(to_experiment_config(config, file=str(run_dir / "config.yaml")), ref_dir, overrides=overrides)
        if result.status != "completed":
            raise DiscoveryError(f"{ref_dir}: the steps re-run ended {result.status} ({result.error}); not promoted")
        metrics = result.to_dict()
        metrics["test_bpb"] = evaluate_test(ref_dir)
        source_extra["reference_run"] = str(ref_dir)
    elif metrics.get("test_bpb") is None and (run_dir / CHECKPOINT_FILE).is_file():
        metrics["test_bpb"] = evaluate_test(run_dir)  # scored once, and recorded in the trial's metrics.json
    discovery = Discovery(
        name=name, description=description, seed=int(config["seed"]), budget=budget, overrides=overrides,
        config=config, recorded=_recorded(metrics), original=original, budget_converted=converted,
        provenance=_provenance(run_dir, source_extra),
    )
    out = repo_root / DISCOVERIES_DIR / f"{name}.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        log.warning("%s exists: replaced by the promotion of %s", out, run_dir)
    discovery.save(out)
    register(name, repo_root)
    log.info("promoted %s → %s (val_bpb %.6f)", run_dir, out, discovery.recorded["val_bpb"])
    return out


# --------------------------------------------------------------------------- train (dvc repro)
@contextmanager
def _versioned_data(cfg: Any, data_dir: Optional[Path]) -> Iterator[Optional[str]]:
    """Train on DVC's ``data/prepared`` when it holds this config's corpus.

    ``prepare_data`` looks for a corpus at ``<cache>/data/<key>/``. A temporary cache whose entry
    for the versioned folder's key links to ``data_dir`` makes training read exactly the
    versioned arrays, while the cache's bookkeeping lands in the temporary folder, never in a
    DVC output. A config for another corpus simply prepares it there. Yields the sha256 of the
    versioned manifest (None without one) so the caller can tell which data was used.
    """
    manifest = Path(data_dir) / "manifest.json" if data_dir else None
    if manifest is None or not manifest.is_file():
        yield None
        return
    key = json.loads(manifest.read_text()).get("key")
    original = cfg.data.cache_dir
    with tempfile.TemporaryDirectory(prefix="autoresearch-data-") as tmp:
        (Path(tmp) / "data").mkdir()
        if key:
            (Path(tmp) / "data" / str(key)).symlink_to(Path(data_dir).resolve(), target_is_directory=True)
        cfg.data.cache_dir = tmp
        try:
            yield hashlib.sha256(manifest.read_bytes()).hexdigest()
        finally:
            cfg.data.cache_dir = original


def _write_curves(curve_jsonl: Path, out: Path) -> None:
    rows = [json.loads(line) for line in curve_jsonl.read_text().splitlines() if line.strip()] if curve_jsonl.is_file() else []
    with open(out / TRAIN_CURVE, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["step", "tokens", "train_loss", "lr"])
        for r in rows:
            if r.get("train_loss") is not None:
                w.writerow([r["step"], r.get("tokens"), r["train_loss"], r.get("lr")])
    with open(out / VAL_CURVE, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["step", "tokens", "val_bpb"])
        for r in rows:
            if r.get("val_bpb") is not None:
                w.writerow([r["step"], r.get("tokens"), r["val_bpb"]])


def train_discovery(path: Path, out: Path, *, data_dir: Path | None = None, tolerance: float | None = None) -> ReproReport:
    """Re-train a discovery into ``out``: ``run/`` (the run directory), ``metrics.json``
    (val_bpb, test_bpb, num_steps, total_tokens_M), ``train_curve.csv``, ``val_curve.csv`` and
    ``reproduce.json`` (the comparison with the recorded metrics)."""
    from autoresearch.config import to_experiment_config
    from autoresearch.experiment import evaluate_test, run_experiment

    path, out = Path(path), Path(out)
    discovery = Discovery.load(path)
    try:
        cfg = to_experiment_config(discovery.config, file=str(path))
    except ValueError as err:
        raise DiscoveryError(f"{path}: config: {err}") from None
    run_dir = out / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    with _versioned_data(cfg, data_dir) as versioned_sha:
        result = run_experiment(cfg, run_dir, overrides=discovery.overrides)
        reproduced = result.to_dict()
        if result.status == "completed":
            reproduced["test_bpb"] = evaluate_test(run_dir)
    (out / METRICS).write_text(json.dumps({k: reproduced.get(k) for k in METRIC_KEYS}, indent=2) + "\n")
    _write_curves(run_dir / "curve.jsonl", out)

    if tolerance is None:
        tolerance, reason = default_tolerance(discovery.budget["kind"], discovery.recorded.get("device") or "cpu", result.device)
    else:
        reason = "given"
    match, diffs, more = compare(discovery.recorded, reproduced, tolerance)
    notes += more
    try:
        now = load_index(run_dir / BUNDLE_DIR)
        prov = discovery.provenance
        if versioned_sha is not None:
            used = now.get("data_manifest_sha256") == versioned_sha
            notes.append(f"trained on the DVC-versioned data in {data_dir}" if used else
                         f"{data_dir} holds another corpus than this discovery's: its data was prepared afresh")
        if prov.get("data_manifest_sha256") and now.get("data_manifest_sha256") != prov["data_manifest_sha256"]:
            notes.append(f"prepared data differs from the promoted trial's (manifest sha256 {now.get('data_manifest_sha256')} "
                         f"vs {prov['data_manifest_sha256']})")
        if prov.get("git_commit") and now.get("git_commit") != prov["git_commit"]:
            notes.append(f"code commit {now.get('git_commit')} differs from the promoted trial's {prov['git_commit']}")
    except BundleError:
        notes.append("the rerun wrote no bundle: provenance not compared")
    report = ReproReport(recorded=discovery.recorded, reproduced=reproduced, tolerance=tolerance, match=match,
                         notes=notes, tolerance_reason=reason, differences=diffs, run_dir=str(run_dir))
    (out / REPORT).write_text(json.dumps(report.to_dict(), indent=2, default=float) + "\n")
    return report
