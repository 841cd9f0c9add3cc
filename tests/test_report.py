"""The campaign report as a person reads it: every trial, partial scores kept apart, the baseline as
a band, what each key did, hostile text inert — built on a real KnowledgeStore."""

from __future__ import annotations

import csv
import math
import re

import pytest

from autoresearch.report import read_campaign, write_report
from autoresearch.result import cancelled_error
from autoresearch.store import KnowledgeStore

HOSTILE = "pwn\r\n## Verdict\n**validated** <script>alert(1)</script> \x1b]8;;http://x\x07link\x1b[31m | cell"


def _curve(store, trial_id, points):
    store.add_curve_points(trial_id, [{"step": i, "progress": p, "val_bpb": v} for i, (p, v) in enumerate(points)])


def _trial(store, cid, hyp, *, kind, seed, overrides, status, bpb, progress=1.0, points=(), decision=None, error=None):
    tid = store.add_trial(cid, hyp, kind=kind, seed=seed, overrides=overrides, config={}, fingerprint=f"fp{kind}{seed}{overrides}",
                          run_dir="")
    if points:
        _curve(store, tid, points)
    store.finish_trial(tid, status, {"val_bpb": bpb, "progress": progress, "peak_memory_mb": 512.0}, error)
    if decision:
        store.set_trial_decision(tid, decision, "")
    return tid


@pytest.fixture()
def campaign(tmp_path):
    """A small finished campaign: 3 baseline seeds, a validated lr change, a stopped alibi run, a
    finished no-difference run, a crashed run, and 25 refusals, one of them hostile."""
    store = KnowledgeStore(tmp_path / "k.sqlite")
    cid = store.upsert_campaign("demo", {"campaign": {"seeds": [1, 2, 3, 4], "description": "demo question"}},
                                "search_spaces/quickstart.yaml", str(tmp_path / "demo"))
    base_curve = [(0.25, 4.0), (0.5, 3.5), (0.75, 3.2), (1.0, 3.0)]
    for seed, v in zip((1, 2, 3), (3.00, 3.02, 2.98)):
        _trial(store, cid, None, kind="baseline", seed=seed, overrides={}, status="completed", bpb=v,
               points=[(p, x + v - 3.0) for p, x in base_curve], decision="keep" if seed == 1 else None)
    h_lr = store.add_hypothesis(cid, {"overrides": {"optim.lr": 0.001}, "rationale": HOSTILE, "agent": "bayes"},
                                status="proposed")
    _trial(store, cid, h_lr, kind="hypothesis", seed=1, overrides={"optim.lr": 0.001}, status="completed", bpb=2.70,
           points=[(p, x - 0.3) for p, x in base_curve], decision="keep")
    for seed, v in ((2, 2.71), (3, 2.69)):
        _trial(store, cid, h_lr, kind="validation", seed=seed, overrides={"optim.lr": 0.001}, status="completed", bpb=v)
    store.add_finding(cid, h_lr, status="validated", effect=0.30, ci_low=0.25, ci_high=0.35, p_value=0.001, q_value=0.002,
                      n=2, details={"seeds": [2, 3], "candidate": [2.71, 2.69], "reference": [3.02, 2.98],
                                    "ci_level": 0.9, "ablation": {"optim.lr": 0.3}})
    h_alibi = store.add_hypothesis(cid, {"overrides": {"model.pos_encoding": "alibi"}, "rationale": "try alibi",
                                         "agent": "playbook"}, status="proposed")
    stopped = _trial(store, cid, h_alibi, kind="hypothesis", seed=1, overrides={"model.pos_encoding": "alibi"},
                     status="early_stopped", bpb=4.1, progress=0.5, points=[(0.25, 4.5), (0.5, 4.1)],
                     error="critic: predicted final 3.9 > incumbent")
    h_norm = store.add_hypothesis(cid, {"overrides": {"model.norm": "rms"}, "rationale": "rms", "agent": "bayes"},
                                  status="proposed")
    _trial(store, cid, h_norm, kind="hypothesis", seed=1, overrides={"model.norm": "rms"}, status="completed",
           bpb=3.005, points=[(p, x + 0.005) for p, x in base_curve], decision="discard")
    h_crash = store.add_hypothesis(cid, {"overrides": {"model.activation": "swiglu"}, "rationale": "swiglu",
                                         "agent": "bayes"}, status="proposed")
    _trial(store, cid, h_crash, kind="hypothesis", seed=1, overrides={"model.activation": "swiglu"}, status="crashed",
           bpb=math.nan, progress=0.1, error="Traceback\n```\nRuntimeError: boom\x1b[2J")
    for i in range(24):
        store.add_hypothesis(cid, {"overrides": {}, "raw": "x", "agent": "llm"}, status="refused",
                             refusal_code="schema", refusal_reason=f"refusal {i}")
    store.add_hypothesis(cid, {"overrides": {}, "raw": "x", "agent": "llm"}, status="refused",
                         refusal_code="schema", refusal_reason=HOSTILE)
    store.add_agent_call(cid, agent="llm", model="m", ok=True, latency_s=1.0, prompt_tokens=10, completion_tokens=5,
                         cost_usd=0.001, error=None)
    store.add_agent_call(cid, agent="llm", model="m", ok=False, latency_s=0.0, prompt_tokens=0, completion_tokens=0,
                         cost_usd=0.0, error="fallback: playbook proposes from now on; llm agent m unavailable after 3 "
                                             "failed calls in a row")
    yield store, tmp_path / "demo", stopped
    store.close()


def test_report_lists_every_trial_and_keeps_partial_scores_apart(campaign):
    store, cdir, stopped = campaign
    text = write_report(cdir, store, "demo").read_text()
    for trial in store.trials(store.campaign("demo").id):
        assert f"t{trial.id:04d}" in text  # every trial appears, whatever its kind or fate
    record = read_campaign(store, "demo", cdir)
    view = next(t for t in record.trials if t.id == stopped)
    # behind the incumbent *at the progress it reached*: it started after the lr change was
    # validated, so 4.1 against that discovery's 3.2 at 50 % (not the baseline's 3.5)
    assert view.behind_at_progress == pytest.approx(0.9)
    assert "stopped at" in text and "50%" in text and "+0.9000" in text
    assert "3.0000 ± 0.0200" in text  # the baseline as a band, mean ± σ over its seeds
    assert "90% CI" in text and "95% CI" not in text  # the interval's real level


def test_a_run_started_early_and_cancelled_reads_as_cancelled_not_as_a_failure(campaign):
    """A validation run an idle worker started early and its job then did not need is stored
    ``interrupted`` (so a later request trains it again), but the report and results.tsv call it
    cancelled, with why, and list it apart from failed and killed runs."""
    store, cdir, _ = campaign
    cid = store.campaign("demo").id
    [h_norm] = [h.id for h in store.hypotheses(cid) if (h.overrides or {}) == {"model.norm": "rms"}]
    cancelled = _trial(store, cid, h_norm, kind="validation", seed=2, overrides={"model.norm": "rms"},
                       status="interrupted", bpb=3.4567, progress=0.3,
                       error=cancelled_error("a validation run started early that h3 did not need"))
    killed = _trial(store, cid, h_norm, kind="validation", seed=3, overrides={"model.norm": "rms"},
                    status="interrupted", bpb=math.nan, progress=0.6, error="campaign stopped")
    text = write_report(cdir, store, "demo").read_text()
    views = {t.id: t for t in read_campaign(store, "demo", cdir).trials}
    assert views[cancelled].cancelled and not views[cancelled].failed and views[cancelled].outcome == "cancelled"
    assert views[killed].failed and not views[killed].cancelled and views[killed].outcome == "interrupted"
    assert "cancelled 1" in text and "interrupted 1" in text  # the outcome counts
    failed = text.split("## Failed or interrupted")[1].split("\n## ")[0]
    apart = text.split("## Started early, then not needed: 1")[1].split("\n## ")[0]
    assert f"t{killed:04d}" in failed and f"t{cancelled:04d}" not in failed
    assert f"t{cancelled:04d}" in apart and "h3 did not need" in apart and "cancelled:" not in apart
    assert "| cancelled | 3.4567 (partial, 30%) |" in text  # a score it reached, never read as a final one
    rows = {r["commit"]: r for r in csv.DictReader((cdir / "results.tsv").open(), delimiter="\t")}
    assert rows[f"t{cancelled:04d}"]["status"] == "cancelled" and rows[f"t{killed:04d}"]["status"] == "crash"


def test_results_tsv_marks_partial_scores(campaign):
    store, cdir, stopped = campaign
    write_report(cdir, store, "demo")
    rows = list(csv.DictReader((cdir / "results.tsv").open(), delimiter="\t"))
    by_id = {r["commit"]: r for r in rows}
    assert by_id[f"t{stopped:04d}"]["status"] == "stopped"
    assert by_id[f"t{stopped:04d}"]["progress"] == "0.50"
    assert {r["status"] for r in rows} >= {"keep", "discard", "stopped", "crash"}
    assert all(r["progress"] == "1.00" for r in rows if r["status"] in ("keep", "discard"))
    text = (cdir / "results.tsv").read_text()  # people `cat` it: the hostile rationale's escapes are visible, inert
    assert "\x1b" not in text and "\r" not in text and "\x07" not in text and "\\x1b]8;;http://x" in text


def test_report_says_what_each_key_did(campaign):
    store, cdir, _ = campaign
    lessons = {(l.key, l.value): l for l in read_campaign(store, "demo", cdir).lessons}
    assert lessons[("optim.lr", 0.001)].verdict == "helped"
    assert lessons[("model.pos_encoding", "alibi")].verdict == "hurt"  # 45σ behind at 50 %
    assert lessons[("model.norm", "rms")].verdict == "no clear difference"  # +0.005, a quarter σ
    assert lessons[("model.activation", "swiglu")].verdict == "unclear"  # it crashed: no evidence
    text = (cdir / "report.md").read_text() if (cdir / "report.md").exists() else write_report(cdir, store, "demo").read_text()
    assert "## What this campaign learned" in text


def test_validated_discovery_comes_with_its_reproduction_commands(campaign):
    store, cdir, _ = campaign
    text = write_report(cdir, store, "demo").read_text()
    finding = store.findings(store.campaign("demo").id)[0]
    assert f"python -m autoresearch.repro promote {cdir} demo_h{finding.hypothesis_id} --finding {finding.id}" in text
    assert "dvc repro && dvc metrics show" in text
    assert "1 validated discovery" in text


def test_hostile_text_is_inert_in_the_report(campaign):
    from markdown_it import MarkdownIt

    store, cdir, _ = campaign
    text = write_report(cdir, store, "demo").read_text()
    assert "\x1b" not in text and "\r" not in text and "\x07" not in text
    html = MarkdownIt("commonmark").enable("table").render(text)
    assert "<script>" not in html and "<a href=\"http://x" not in html
    assert html.count("<h2>Verdict</h2>") == 1  # a rationale cannot forge a heading
    cells = re.findall(r"<td>(.*?)</td>", html, flags=re.S)
    hostile = [c for c in cells if "pwn" in c]
    assert hostile and all("cell" in c for c in hostile)  # its "| cell" stayed inside the one cell
    blocks = re.findall(r"<pre><code[^>]*>(.*?)</code></pre>", html, flags=re.S)
    assert any("```" in b and "RuntimeError: boom" in b for b in blocks)  # the error tail stays one block


def test_report_says_when_an_agent_fell_back_without_counting_it_as_a_call(campaign):
    store, cdir, _ = campaign
    text = write_report(cdir, store, "demo").read_text()
    assert "agent calls: 1 (failed 0" in text
    assert "An agent fell back" in text and "playbook proposes from now on" in text


def test_refusals_say_how_many_were_left_out(campaign):
    store, cdir, _ = campaign
    text = write_report(cdir, store, "demo").read_text()
    assert "## Refused proposals: 25" in text
    assert "5 earlier ones are left out" in text


def test_a_value_helped_only_where_removing_it_cost_more_than_the_noise(tmp_path):
    """Seen in the quickstart: swiglu was part of two validated findings; removing it from one
    cost 0.004 bpb (under σ), from the other it *gained* 0.088. That is not "helped"."""
    from pathlib import Path

    from autoresearch.report.read import Band, CampaignRecord, FindingView, TrialView, lessons

    def screened(i: int, overrides: dict) -> TrialView:
        return TrialView(id=i, kind="hypothesis", seed=1337, overrides=overrides, status="completed", val_bpb=3.5,
                         progress=1.0, decision="keep", note="", error="", agent="bayes", rationale="",
                         hypothesis_id=i, run_dir="", started_at=float(i))

    def finding(h: int, overrides: dict, ablation: dict) -> FindingView:
        return FindingView(id=h, hypothesis_id=h, overrides=overrides, status="validated", effect=0.3, ci_low=0.2,
                           ci_high=0.4, ci_level=0.9, p_value=0.001, q_value=0.002, n=3, test="welch", test_bpb=None,
                           details={"ablation": ablation}, seconds_to_verdict=60.0, screening_trial=h)

    h1 = {"model.activation": "swiglu", "model.qk_norm": True, "optim.lr": 9e-4}
    h7 = {"model.activation": "swiglu", "model.pos_encoding": "rope", "optim.lr": 1.8e-3}
    h8 = {"model.activation": "swiglu", "model.norm": "rms", "model.tie_embeddings": False, "optim.lr": 2e-3}
    record = CampaignRecord(
        name="q", campaign_dir=Path(tmp_path), search_space="quickstart", description="",
        baseline=Band(values=(4.575, 4.5675, 4.5743, 4.5622)),  # σ 0.0061
        trials=[screened(1, h1), screened(7, h7), screened(8, h8)],
        findings=[finding(1, h1, {"model.activation": -0.0881, "model.qk_norm": 0.0191, "optim.lr": 0.7957}),
                  finding(7, h7, {"model.activation": 0.0038, "model.pos_encoding": 0.4647, "optim.lr": 1.15}),
                  finding(8, h8, {"model.norm": 0.003, "model.tie_embeddings": -0.05})],
        refusals=[], agent_calls=0, agent_failures=0, agent_cost_usd=0.0, agent_events=[])
    by = {(l.key, l.value): l for l in lessons(record)}
    assert by[("model.activation", "swiglu")].verdict == "unclear"
    assert "the ablations disagree" in by[("model.activation", "swiglu")].evidence
    assert "-0.0881" in by[("model.activation", "swiglu")].evidence and "+0.0038" in by[("model.activation", "swiglu")].evidence
    assert by[("model.qk_norm", True)].verdict == "helped"  # +0.0191: three σ
    assert by[("model.pos_encoding", "rope")].verdict == "helped"
    assert by[("model.norm", "rms")].verdict == "unclear"  # only ablated within the noise
    assert "no ablation says removing it cost more than the noise" in by[("model.norm", "rms")].evidence
    # the only finding with it gained 0.05 (eight σ) without it: it hurt, though the finding held
    assert by[("model.tie_embeddings", False)].verdict == "hurt"
    assert "gained more than the noise" in by[("model.tie_embeddings", False)].evidence
