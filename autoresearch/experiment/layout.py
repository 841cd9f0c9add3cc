"""The run directory's layout and the spec a trial process starts from (no torch here).

Kept apart from ``run.py`` so the campaign can name these files, write a trial's spec and start
processes before torch is imported: the first trial's process then imports torch in parallel
with the campaign's own start-up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import yaml

from autoresearch.config import ExperimentConfig, save_config

CONFIG_FILE = "config.yaml"
OVERRIDES_FILE = "overrides.yaml"
METRICS_FILE = "metrics.json"
CURVE_FILE = "curve.jsonl"
LOG_FILE = "run.log"
STOP_FILE = "STOP"
CHECKPOINT_FILE = "model.pt"


def write_run_spec(cfg: ExperimentConfig, run_dir: Path, overrides: Sequence[str] = ()) -> None:
    """What a trial process needs to start: the resolved config and the overrides behind it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir / CONFIG_FILE)
    (run_dir / OVERRIDES_FILE).write_text(yaml.safe_dump(list(overrides), default_flow_style=False))


def read_overrides(run_dir: Path) -> list[str]:
    path = run_dir / OVERRIDES_FILE
    return list(yaml.safe_load(path.read_text()) or []) if path.is_file() else []
