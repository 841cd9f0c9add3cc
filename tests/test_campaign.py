"""The autonomous loop on tiny real trials: a whole campaign, a resume after a real SIGKILL, and
an LLM agent over loopback HTTP whose hostile answers are refused and recorded, never run."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from llm_server import Reply, llm_server  # noqa: F401  (fixture used by name)

from autoresearch.campaign import run_campaign
from autoresearch.config import compose, to_experiment_config
from autoresearch.store import KnowledgeStore

TINY_TRIALS = [
    "model.n_layer=1", "model.n_embd=32", "model.n_head=2", "model.block_size=32",
    "trainer.budget.kind=steps", "trainer.budget.value=12", "trainer.batch_size=8", "trainer.eval_points=3",
    "trainer.eval_bytes=4096", "trainer.final_eval_bytes=8192", "logger=none", "knowledge.embedder.kind=hashing",
]


def campaign_overrides(tmp_path: Path, *extra: str) -> list[str]:
    # No wall-clock limit: the quickstart's 560 s would cut a test short on a loaded machine, and
    # what a test asserts must not depend on how fast the machine is that day.
    return ["+campaign=quickstart", *TINY_TRIALS, f"campaign.root={tmp_path / 'campaigns'}",
            f"knowledge.db={tmp_path / 'knowledge.sqlite'}", "campaign.max_wall_s=86400", *extra]


def resume_losing_nothing(cmd: list[str], tmp_path: Path, env: dict, before: dict, timeout: float):
    """Run the killed campaign's command again; check that every trial finished before the kill is
    still there, unchanged. Returns the store and the campaign's trials afterwards."""
    resumed = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    store = KnowledgeStore(tmp_path / "knowledge.sqlite")
    trials = store.trials(store.campaign("quickstart").id)
    by_id = {t.id: t for t in trials}
    for tid, old in before.items():  # no finished trial lost or changed
        assert by_id[tid].status == old.status and by_id[tid].metrics == old.metrics
    return store, trials, resumed


def run(overrides: list[str]):
    return run_campaign(to_experiment_config(compose(overrides)), overrides, interactive=False)


def test_campaign_runs_judges_and_reports(tmp_path):
    overrides = campaign_overrides(tmp_path, "agent=playbook", "campaign.max_trials=3", "critic.noise_seeds=2",
                                   "critic.validation_seeds=2")
    summary = run(overrides)
    store = KnowledgeStore(tmp_path / "knowledge.sqlite")
    campaign = store.campaign("quickstart")
    trials = store.trials(campaign.id)
    kinds = [t.kind for t in trials]
    assert kinds[:2] == ["baseline", "baseline"]
    assert kinds.count("hypothesis") == 3 == summary.trials
    for trial in trials:
        assert trial.status != "running"
        assert (Path(trial.run_dir) / "metrics.json").is_file()
        assert (Path(trial.run_dir) / "bundle" / "Dockerfile").is_file()
    for trial in trials:
        if trial.kind == "hypothesis":
            assert trial.decision in ("keep", "discard"), trial  # every screening run was judged
            assert store.curve(trial.id), "curve points streamed into the store"
    candidates = [t for t in trials if t.kind == "hypothesis" and t.decision == "keep"]
    findings = store.findings(campaign.id)
    assert len(findings) >= len(candidates)
    for finding in findings:
        assert finding.status in ("validated", "rejected", "inconclusive")
        assert finding.ci_low <= finding.effect <= finding.ci_high
    cdir = tmp_path / "campaigns" / "quickstart"
    report = (cdir / "report.md").read_text()
    assert "## Verdict" in report and "## Baseline" in report and "## Every trial" in report
    assert (cdir / "progress.png").stat().st_size > 1000
    with open(cdir / "results.tsv") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert list(rows[0]) == ["commit", "val_bpb", "memory_gb", "status", "description", "progress"]
    assert len(rows) == len(trials)
    for finding in findings:  # time to insight: proposal → verdict, from the store's own clock
        assert finding.details["verdict_at"] >= finding.details["proposed_at"]
        assert finding.details["time_to_verdict_s"] >= 0


def test_resume_after_sigkill_loses_nothing_and_repeats_nothing(tmp_path, data_cache):
    overrides = campaign_overrides(tmp_path, "agent=hybrid", "agent.partner_kind=playbook", "campaign.max_trials=4",
                                   "critic.noise_seeds=2", "critic.validation_seeds=2", "agent.bayes.sobol_trials=2")
    env = {**os.environ, "AUTORESEARCH_CACHE": data_cache}
    cmd = [sys.executable, "-m", "autoresearch", *overrides]
    db = tmp_path / "knowledge.sqlite"
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    before = {}
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
            if not db.is_file():
                continue
            store = KnowledgeStore(db)
            campaign = store.campaign("quickstart")
            trials = store.trials(campaign.id) if campaign else []
            finished = [t for t in trials if t.status != "running"]
            running = [t for t in trials if t.status == "running"]
            if len(finished) >= 3 and running:
                before = {t.id: t for t in finished}
                proc.send_signal(signal.SIGKILL)  # mid-trial: the worst moment
                break
            store.close()
    finally:
        proc.wait(timeout=60)
    assert before, "the campaign never reached its third trial"
    assert proc.returncode == -signal.SIGKILL

    store, trials, resumed = resume_losing_nothing(cmd, tmp_path, env, before, timeout=600)
    interrupted = [t for t in trials if t.status == "interrupted"]
    assert len(interrupted) == 1 and not any((t.error or "").startswith("interrupted") for t in trials
                                             if t.status != "interrupted")
    finished = [t for t in trials if t.status in ("completed", "early_stopped") and t not in interrupted]
    runs = [(t.kind, t.fingerprint, t.seed) for t in finished]
    assert len(runs) == len(set(runs)), "a finished trial was run twice"
    hypothesis_runs = [t for t in trials if t.kind == "hypothesis" and t not in interrupted]
    assert len(hypothesis_runs) == 4
    output = resumed.stdout + resumed.stderr
    assert "past trials replayed" in output and "(0 past trials replayed)" not in output  # Ax rebuilt from the store
    assert all(t.status != "running" for t in trials)


HOSTILE = [
    {"overrides": {"hydra.run.dir": "/tmp/pwned"}, "rationale": "x", "expected_effect": "x"},
    {"overrides": {"optim.lr": "${oc.env:FAKE_PROVIDER_API_KEY}"}, "rationale": "x", "expected_effect": "x"},
    {"overrides": {"model._target_": "os.system"}, "rationale": "x", "expected_effect": "x"},
    {"overrides": ["~model.norm"], "rationale": "x", "expected_effect": "x"},
    {"overrides": {"++trainer.budget.value": 1e9}, "rationale": "x", "expected_effect": "x"},
    {"overrides": {"optim.lr": 5.0}, "rationale": "way out of range", "expected_effect": "x"},
    {"overrides": {"model.norm": "rms"}, "rationale": "fine", "expected_effect": "x", "shell": "rm -rf /"},
]


def test_llm_campaign_refuses_hostile_answers_and_survives_a_dead_endpoint(tmp_path, llm_server, monkeypatch):
    import json

    secret = "sk-test-very-secret-value-123456"
    monkeypatch.setenv("FAKE_PROVIDER_API_KEY", secret)
    llm_server.script(
        *[Reply(content=json.dumps(h)) for h in HOSTILE],
        Reply.answer({"optim.lr": 0.006, "model.activation": "relu2"}, rationale="higher lr with relu2"),
        *[Reply(status=500, content="upstream exploded") for _ in range(30)],
    )
    overrides = campaign_overrides(
        tmp_path, "agent=llm", "campaign.max_trials=5", "critic.noise_seeds=1", "critic.validation_seeds=2",
        "model.n_layer=1", f"agent.llm.api_base={llm_server.api_base}", "agent.llm.model=openai/test-model",
        "agent.llm.api_key_env=FAKE_PROVIDER_API_KEY", "agent.llm.timeout_s=2", "agent.llm.max_retries=1",
        "agent.llm.backoff_s=0.01", "agent.llm.max_consecutive_failures=4")
    summary = run(overrides)
    store = KnowledgeStore(tmp_path / "knowledge.sqlite")
    campaign = store.campaign("quickstart")
    refused = store.hypotheses(campaign.id, status="refused")
    assert len(refused) >= 5
    codes = {h.refusal_code for h in refused}
    assert {"forbidden", "range"} <= codes, codes
    ran = store.trials(campaign.id, kind="hypothesis")
    assert summary.trials == len(ran) == 5  # the dead endpoint did not end the campaign: the playbook took over
    for trial in ran:
        assert not any(k.startswith(("hydra", "~", "+")) or "_target_" in k for k in trial.overrides)
    calls = store.agent_calls(campaign.id)
    assert calls and any(not c.ok for c in calls) and any(c.ok for c in calls)
    # the key never reaches the store, a prompt or any file the campaign wrote
    assert secret.encode() not in (tmp_path / "knowledge.sqlite").read_bytes()
    for request in llm_server.requests:
        assert secret not in request.raw and "Authorization" not in request.prompt_text
    for path in (tmp_path / "campaigns").rglob("*"):
        if path.is_file() and path.suffix in (".yaml", ".json", ".jsonl", ".log", ".md", ".tsv", ".lock", ""):
            assert secret not in path.read_text(errors="ignore"), path


def test_validated_multi_key_discovery_is_scored_on_test_and_ablated(tmp_path):
    """A planted two-key improvement over a deliberately poor baseline (lr far too low) goes the
    whole way: validation on fresh seeds, the hidden test split, leave-one-out ablations and the
    graph PNG. The critic's thresholds are loosened only so that three tiny seeds can validate."""
    from autoresearch.campaign import Campaign
    from autoresearch.search import Hypothesis

    overrides = campaign_overrides(tmp_path, "agent=random", "campaign.max_trials=1", "critic.noise_seeds=2",
                                   "critic.validation_seeds=3", "critic.fdr=0.5", "critic.test.alpha=0.4",
                                   "critic.ablations=true", "optim.lr=0.0003", "trainer.budget.value=30",
                                   "campaign.seeds=[1,2,3,4]", "campaign.scale_ladder=[2]", "campaign.scale_seeds=2")
    campaign = Campaign(to_experiment_config(compose(overrides)), overrides, interactive=False)
    campaign.run_baseline()
    planted = Hypothesis(overrides={"optim.lr": 0.01, "model.activation": "swiglu"}, agent="test",
                         rationale="planted: a sane learning rate")
    outcome = campaign.test(planted)
    campaign.close(keep_store=True)
    assert outcome is not None and outcome.request.kind == "hypothesis"
    [finding] = campaign.store.findings(campaign.campaign_id)
    assert finding.status == "validated", finding
    assert finding.test_bpb is not None and finding.test_bpb > 0
    ablation = finding.details["ablation"]
    assert set(ablation) == {"optim.lr", "model.activation"}
    assert ablation["optim.lr"] > ablation["model.activation"]  # the lr did the work
    assert Path(finding.details["ablation_png"]).stat().st_size > 1000
    kinds = [t.kind for t in campaign.store.trials(campaign.campaign_id)]
    assert kinds.count("ablation") == 2 * 3  # two keys × three validation seeds
    # the scale gap: the discovery and the incumbent again at twice the depth, two seeds each
    assert kinds.count("scale") == 2 * 2
    [rung] = finding.details["scale"]
    assert rung["factor"] == 2 and rung["model"]["model.n_layer"] == 2 and rung["seeds"] == [2, 3]
    assert rung["ci_low"] <= rung["effect"] <= rung["ci_high"] and len(rung["candidate"]) == 2
    assert rung["verdict"] in ("holds", "shrinks", "flips")
    scaled = [t for t in campaign.store.trials(campaign.campaign_id) if t.kind == "scale"]
    assert all(t.config["model"]["n_layer"] == 2 for t in scaled)
    assert finding.details["time_to_verdict_s"] > 0
    campaign.store.close()
