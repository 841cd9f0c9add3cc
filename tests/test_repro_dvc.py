"""Issue 5, first proof: in a fresh git repository, a tiny trial is promoted to a discovery and
``dvc repro`` re-trains it to the same val_bpb (CPU, steps budget: to 1e-6)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.skipif(shutil.which("dvc") is None or shutil.which("git") is None, reason="needs dvc and git")


def _sh(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    reports = "".join(f.read_text() for f in cwd.glob("results/*/reproduce.json")) if proc.returncode else ""
    assert proc.returncode == 0, f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}\n{reports}"
    return proc


def test_promote_then_dvc_repro_reproduces_val_bpb(project_clone, tiny_overrides):
    repo = project_clone  # a fresh git + DVC repository of the source tree (tests/conftest.py)

    # A tiny trial through the real entry point, promoted through the CLI: both run the clone's
    # code, the code `dvc repro` will run.
    _sh([sys.executable, "-m", "autoresearch", *tiny_overrides, "hydra.run.dir=outputs/trial"], repo)
    trial = json.loads((repo / "outputs/trial/metrics.json").read_text())
    assert trial["status"] == "completed"
    out = _sh([sys.executable, "-m", "autoresearch.repro", "promote", "outputs/trial", "tiny_win"], repo).stdout
    assert out.strip() == str(repo / "discoveries/tiny_win.yaml")
    discovery = yaml.safe_load((repo / "discoveries/tiny_win.yaml").read_text())
    assert discovery["recorded"]["val_bpb"] == trial["val_bpb"]
    assert discovery["recorded"]["test_bpb"] is not None
    assert discovery["budget"] == {"kind": "steps", "value": 20.0} and discovery["budget_converted"] is None
    assert discovery["provenance"]["git_commit"] == _sh(["git", "rev-parse", "HEAD"], repo).stdout.strip()
    assert yaml.safe_load((repo / "params.yaml").read_text())["discoveries"] == ["tiny_win"]
    _sh(["git", "add", "discoveries", "params.yaml"], repo)
    _sh(["git", "commit", "-qm", "promote tiny_win"], repo)

    _sh(["dvc", "repro"], repo, timeout=600)
    shown = json.loads(_sh(["dvc", "metrics", "show", "--json"], repo).stdout)
    metrics = shown[""]["data"]["results/tiny_win/metrics.json"]["data"]
    assert abs(metrics["val_bpb"] - discovery["recorded"]["val_bpb"]) <= 1e-6
    assert abs(metrics["test_bpb"] - discovery["recorded"]["test_bpb"]) <= 1e-6
    report = json.loads((repo / "results/tiny_win/reproduce.json").read_text())
    assert report["match"] and report["tolerance"] == 1e-6
    assert any("DVC-versioned data" in n for n in report["notes"])  # trained on data/prepared
    assert (repo / "results/tiny_win/val_curve.csv").read_text().startswith("step,tokens,val_bpb\n")
    # The pipeline is now up to date: nothing re-runs until a discovery, the data or the code changes.
    assert "up to date" in _sh(["dvc", "status"], repo).stdout.lower()
