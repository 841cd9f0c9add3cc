"""The product's reason to exist, end to end on tiny real trials: a campaign with a real positive
control finds it, validates it over fresh seeds, ablates it, scores it on the test split, and the
commands its report prints reproduce it with ``dvc repro``; the same campaign over changes that
do nothing (A/A) validates nothing."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from autoresearch.store import KnowledgeStore

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

# The quickstart's own baseline (GPT-2 style, lr 3e-4) shrunk to seconds per trial.
TINY = ["model.n_layer=1", "model.n_embd=32", "model.n_head=2", "model.block_size=32", "trainer.budget.value=30",
        "trainer.batch_size=8", "trainer.eval_points=3", "trainer.eval_bytes=4096", "trainer.final_eval_bytes=8192",
        "logger=none", "knowledge.embedder.kind=hashing", "campaign.scale_ladder=[]"]

# A learning rate far above the untuned 3e-4 (a real, large effect at any budget) together with a
# key that changes nothing under learned positions: the ablation must tell them apart.
POSITIVE = {"name": "positive_control", "parameters": {
    "optim.lr": {"type": "range", "value_type": "float", "bounds": [0.004, 0.01], "log_scale": True},
    "model.rope_base": {"type": "range", "value_type": "float", "bounds": [1000.0, 100000.0], "log_scale": True}}}
# A/A: changes with no effect on what is learned — the rotary base of a model with learned positions,
# and an initialisation scale within ±0.5 % of the baseline's.
NULL = {"name": "null_changes", "parameters": {
    "model.rope_base": {"type": "range", "value_type": "float", "bounds": [1000.0, 100000.0], "log_scale": True},
    "model.init_std": {"type": "range", "value_type": "float", "bounds": [0.0199, 0.0201]}}}


def _sh(args: list[str], cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _campaign(repo: Path, space: dict, *extra: str) -> Path:
    path = repo / f"{space['name']}.yaml"
    path.write_text(yaml.safe_dump(space))
    _sh([sys.executable, "-m", "autoresearch", "+campaign=quickstart", *TINY, f"campaign.search_space={path}",
         "campaign.max_trials=3", "campaign.max_wall_s=900", *extra], repo)
    return repo / "outputs" / "campaigns" / "quickstart"


@pytest.mark.skipif(shutil.which("dvc") is None or shutil.which("git") is None, reason="needs dvc and git")
def test_quickstart_loop_finds_validates_ablates_and_reproduces(project_clone):
    repo = project_clone
    cdir = _campaign(repo, POSITIVE, "agent=random")
    store = KnowledgeStore(repo / "outputs" / "knowledge.sqlite")
    campaign = store.campaign("quickstart")
    findings = [f for f in store.findings(campaign.id) if f.status == "validated"]
    assert findings, (cdir / "report.md").read_text()
    best = max(findings, key=lambda f: f.effect)
    assert best.effect > 0 and best.ci_low > 0 and best.q_value <= 0.05
    assert best.test_bpb is not None  # scored once on the hidden test split
    ablation = best.details["ablation"]
    assert ablation["optim.lr"] > 10 * abs(ablation["model.rope_base"])  # the ablation finds the real cause
    report = (cdir / "report.md").read_text()
    assert "validated discover" in report and "## What this campaign learned" in report

    # The report's own commands reproduce the discovery.
    block = re.search(r"```bash\n(python -m autoresearch\.repro promote [^\n]+)\n(dvc repro[^\n]*)\n```", report)
    assert block, report
    _sh(["git", "add", "-A", "."], repo)
    _sh(["git", "commit", "-qm", "campaign"], repo)
    promote = shlex.split(block.group(1))
    _sh([sys.executable, *promote[1:]], repo)
    name = promote[5]
    discovery = yaml.safe_load((repo / "discoveries" / f"{name}.yaml").read_text())
    screening = next(t for t in store.trials(campaign.id) if t.kind == "hypothesis" and t.hypothesis_id == best.hypothesis_id)
    assert discovery["recorded"]["val_bpb"] == pytest.approx(screening.val_bpb, abs=1e-6)
    _sh(["git", "add", "discoveries", "params.yaml"], repo)
    _sh(["git", "commit", "-qm", f"promote {name}"], repo)
    _sh(["dvc", "repro"], repo)
    shown = json.loads(_sh(["dvc", "metrics", "show", "--json"], repo).stdout)
    metrics = shown[""]["data"][f"results/{name}/metrics.json"]["data"]
    assert abs(metrics["val_bpb"] - discovery["recorded"]["val_bpb"]) <= 1e-6


def test_a_campaign_over_changes_that_do_nothing_validates_nothing(project_clone):
    cdir = _campaign(project_clone, NULL, "agent=random", "campaign.max_trials=4")
    store = KnowledgeStore(project_clone / "outputs" / "knowledge.sqlite")
    campaign = store.campaign("quickstart")
    screened = [t for t in store.trials(campaign.id) if t.kind == "hypothesis"]
    assert len(screened) == 4
    assert not [f for f in store.findings(campaign.id) if f.status == "validated"]
    assert "No discovery is claimed" in (cdir / "report.md").read_text()
