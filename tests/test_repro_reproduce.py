"""Reruns that say whether a result came back, and discoveries that are promoted and re-trained."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import yaml

from autoresearch.config import compose, to_experiment_config
from autoresearch.experiment import run_experiment
from autoresearch.repro import (
    DETERMINISTIC_TOLERANCE,
    DEVICE_TOLERANCE,
    SECONDS_TOLERANCE,
    Discovery,
    DiscoveryError,
    default_tolerance,
    finalize_bundle,
    promote,
    register,
    reproduce,
    train_discovery,
)
from autoresearch.repro.__main__ import main as repro_cli
from autoresearch.repro.reproduce import compare

TINY = ["model=tiny", "trainer=smoke", "logger=none"]


def _run(run_dir: Path, cache: str, *extra: str):
    overrides = [*TINY, f"data.cache_dir={cache}", *extra]
    return run_experiment(to_experiment_config(compose(overrides)), run_dir, overrides=overrides)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, data_cache) -> Path:
    run_dir = tmp_path_factory.mktemp("tiny") / "run"
    assert _run(run_dir, data_cache).status == "completed"
    return run_dir


def test_a_bundle_alone_reruns_to_1e6_on_cpu(tiny_run, tmp_path):
    finalize_bundle(tiny_run)  # the recorded result travels with the bundle (a Docker image has nothing else)
    bundle = shutil.copytree(tiny_run / "bundle", tmp_path / "bundle")
    report = reproduce(bundle, out_dir=tmp_path / "rerun")
    recorded = json.loads((tiny_run / "metrics.json").read_text())
    assert report.match, report.summary()
    assert (report.tolerance, report.tolerance_reason) == (DETERMINISTIC_TOLERANCE, "steps budget on CPU: deterministic")
    assert report.recorded["val_bpb"] == recorded["val_bpb"]
    assert abs(report.reproduced["val_bpb"] - recorded["val_bpb"]) <= 1e-6
    # Provenance notes say exactly when the rerun's code or packages differ from the recorded ones.
    before = json.loads((bundle / "bundle.json").read_text())
    after = json.loads((tmp_path / "rerun" / "bundle" / "bundle.json").read_text())
    assert any("git commit differs" in n for n in report.notes) == (before["git_commit"] != after["git_commit"])
    assert any("lock differs" in n for n in report.notes) == (before["lock_sha256"] != after["lock_sha256"])
    assert json.loads((tmp_path / "rerun" / "reproduce.json").read_text())["match"] is True


def test_tolerance_follows_budget_and_device():
    assert default_tolerance("steps", "cpu")[0] == DETERMINISTIC_TOLERANCE
    assert default_tolerance("flops", "cpu", "cpu")[0] == DETERMINISTIC_TOLERANCE
    assert default_tolerance("tokens", "cuda:0")[0] == DEVICE_TOLERANCE
    assert default_tolerance("steps", "cuda", "cpu")[0] == DEVICE_TOLERANCE
    assert default_tolerance("seconds", "cpu")[0] == SECONDS_TOLERANCE


def test_compare_flags_a_difference_beyond_the_tolerance():
    recorded = {"status": "completed", "val_bpb": 2.0, "test_bpb": 2.1}
    assert compare(recorded, {"status": "completed", "val_bpb": 2.0 + 5e-7, "test_bpb": 2.1}, 1e-6)[0]
    ok, diffs, _ = compare(recorded, {"status": "completed", "val_bpb": 2.01, "test_bpb": 2.1}, 1e-6)
    assert not ok and diffs["val_bpb"] == pytest.approx(0.01)
    ok, _, notes = compare(recorded, {"status": "diverged", "val_bpb": 2.0}, 1e-6)
    assert not ok and "test_bpb was recorded but the rerun has none" in notes
    assert "status differs: recorded completed, rerun diverged" in notes
    assert not compare({"val_bpb": None}, {"val_bpb": 2.0}, 1.0)[0]  # nothing recorded: nothing reproduced


def test_promote_converts_a_seconds_budget_and_the_discovery_reproduces(tmp_path, data_cache):
    trial = tmp_path / "trial"
    result = _run(trial, data_cache, "trainer.budget.kind=seconds", "trainer.budget.value=0.5")
    assert result.status == "completed" and result.num_steps > 0
    path = promote(trial, "fast_lr", tmp_path / "repo", description="demo")
    d = Discovery.load(path)
    assert d.budget == {"kind": "steps", "value": result.num_steps}
    assert d.budget_converted["from"] == {"kind": "seconds", "value": 0.5}
    assert d.original["val_bpb"] == result.val_bpb  # the trial's own number is kept, not compared with
    assert d.overrides[-2:] == ["trainer.budget.kind=steps", f"trainer.budget.value={result.num_steps}"]
    assert d.config["data"]["cache_dir"].startswith("${oc.env:AUTORESEARCH_CACHE")
    assert d.config["campaign"] is None and d.config["name"] == "fast_lr"
    assert d.recorded["test_bpb"] is not None and d.provenance["reference_run"].endswith("outputs/promote/fast_lr")

    report = train_discovery(path, tmp_path / "repo" / "results" / "fast_lr")
    assert report.match and report.tolerance == DETERMINISTIC_TOLERANCE, report.summary()
    metrics = json.loads((tmp_path / "repo/results/fast_lr/metrics.json").read_text())
    assert metrics["val_bpb"] == pytest.approx(d.recorded["val_bpb"], abs=1e-6)
    assert metrics["test_bpb"] == pytest.approx(d.recorded["test_bpb"], abs=1e-6)
    train_csv = (tmp_path / "repo/results/fast_lr/train_curve.csv").read_text().splitlines()
    assert train_csv[0] == "step,tokens,train_loss,lr" and len(train_csv) > 1


def test_promote_from_a_campaign_trial_and_register_is_idempotent(tiny_run, tmp_path):
    campaign = tmp_path / "campaigns" / "demo"
    shutil.copytree(tiny_run, campaign / "trials" / "t0003")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "params.yaml").write_text("other: 1\ndiscoveries: [older]\n")
    path = promote(campaign, "from_campaign", repo, trial="3")
    d = yaml.safe_load(path.read_text())
    assert (d["provenance"]["campaign"], d["provenance"]["trial"]) == ("demo", "t0003")
    assert d["recorded"]["val_bpb"] == json.loads((tiny_run / "metrics.json").read_text())["val_bpb"]
    register("from_campaign", repo)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    assert params == {"other": 1, "discoveries": ["older", "from_campaign"]}


def test_promote_refuses_what_it_cannot_reproduce(tiny_run, tmp_path, capsys):
    with pytest.raises(DiscoveryError, match="use letters, digits"):
        promote(tiny_run, "no spaces", tmp_path)
    diverged = shutil.copytree(tiny_run, tmp_path / "diverged")
    metrics = json.loads((diverged / "metrics.json").read_text())
    (diverged / "metrics.json").write_text(json.dumps({**metrics, "status": "diverged", "val_bpb": math.nan}))
    with pytest.raises(DiscoveryError, match="status is 'diverged'; only a completed run"):
        promote(diverged, "x", tmp_path)
    (tmp_path / "camp" / "trials").mkdir(parents=True)
    assert repro_cli(["promote", str(tmp_path / "camp"), "x", "--repo-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"error: {tmp_path / 'camp' / 'config.yaml'}: no such file" in err and "--trial ID" in err
    assert not (tmp_path / "discoveries").exists()


def test_a_discovery_file_is_checked_before_anything_runs(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"name": "b", "seed": 1, "budget": {"kind": "seconds", "value": 5}, "overrides": [],
                                   "config": {}, "recorded": {}, "colour": "red"}))
    with pytest.raises(DiscoveryError) as err:
        Discovery.load(bad)
    assert str(err.value).splitlines() == [f"{bad}: colour: unknown key",
                                           f"{bad}: budget.kind: must be steps, tokens or flops for an exact rerun, got 'seconds'"]
    with pytest.raises(DiscoveryError, match="no such discovery file"):
        train_discovery(tmp_path / "missing.yaml", tmp_path / "out")


def test_promote_a_campaign_finding_picks_its_screening_trial(tiny_run, tmp_path):
    from autoresearch.store import KnowledgeStore

    db = tmp_path / "knowledge.sqlite"
    campaign = tmp_path / "campaigns" / "demo"
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    with KnowledgeStore(db) as store:
        cid = store.upsert_campaign("demo", {}, "space.yaml", str(campaign))
        hid = store.add_hypothesis(cid, {"overrides": {"optim.lr": 0.01}}, status="proposed")
        ids = {}
        for kind, seed in (("hypothesis", 1337), ("validation", 1338)):
            tid = store.add_trial(cid, hid, kind=kind, seed=seed, overrides={"optim.lr": 0.01}, config={},
                                  fingerprint="f", run_dir="")
            run_dir = campaign / "trials" / f"t{tid:04d}"
            shutil.copytree(tiny_run, run_dir)
            cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
            cfg["knowledge"]["db"] = str(db)  # where the campaign kept its store
            (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg))
            store.set_trial_run_dir(tid, str(run_dir))
            store.finish_trial(tid, "completed", metrics)
            ids[kind] = tid
        fid = store.add_finding(cid, hid, status="validated", effect=-0.05, ci_low=-0.08, ci_high=-0.02,
                                p_value=0.01, q_value=0.02, n=3)
    path = promote(campaign, "lr_up", tmp_path / "repo", finding=fid)
    prov = yaml.safe_load(path.read_text())["provenance"]
    assert prov["trial"] == f"t{ids['hypothesis']:04d}" and prov["finding"] == fid
    assert (prov["finding_status"], prov["q_value"]) == ("validated", 0.02)
    with pytest.raises(DiscoveryError, match=f"no finding {fid + 1}"):
        promote(campaign, "lr_up", tmp_path / "repo", finding=fid + 1)
