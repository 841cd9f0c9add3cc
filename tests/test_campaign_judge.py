"""The judge on its own: how a model is made k× larger and an effect said to hold, shrink or flip
at that size (the campaign test runs a real rung end to end), the screening margin, and what
waits for the hidden test split's scoring."""

from __future__ import annotations

from pathlib import Path

import pytest

from autoresearch.campaign.judge import scale_verdict, scaled_model

BASE = {"model.n_layer": 3, "model.n_embd": 96, "model.n_head": 4, "model.n_kv_head": 0}


def _non_embedding_params(flat: dict) -> int:
    return 12 * flat["model.n_layer"] * flat["model.n_embd"] ** 2


@pytest.mark.parametrize("factor, layers, width", [(2, 6, 96), (4, 3, 192), (8, 6, 192), (3, 9, 96), (16, 3, 384)])
def test_a_k_times_larger_model_has_k_times_the_parameters_and_the_same_head_size(factor, layers, width):
    patch = scaled_model(BASE, factor)
    assert (patch["model.n_layer"], patch["model.n_embd"]) == (layers, width)
    assert _non_embedding_params(patch) == factor * _non_embedding_params(BASE)
    assert patch["model.n_embd"] // patch["model.n_head"] == BASE["model.n_embd"] // BASE["model.n_head"]
    assert "model.n_kv_head" not in patch  # plain multi-head stays plain


def test_grouped_query_heads_scale_with_the_width():
    assert scaled_model({**BASE, "model.n_kv_head": 2}, 4)["model.n_kv_head"] == 4


def test_a_factor_must_be_a_whole_number():
    with pytest.raises(ValueError, match="whole number"):
        scaled_model(BASE, 1.5)


@pytest.mark.parametrize("effect, scaled, ci, verdict", [
    (0.10, 0.09, (0.05, 0.13), "holds"),     # same side of zero, most of the effect kept
    (0.10, 0.03, (0.01, 0.05), "shrinks"),   # still positive, but under half
    (0.10, 0.04, (-0.02, 0.10), "shrinks"),  # no longer distinguishable from zero
    (0.10, -0.08, (-0.12, -0.04), "flips"),  # reliably worse at the larger size
    (-0.05, -0.05, (-0.08, -0.02), "holds"), # a harmful change that stays harmful
    (-0.05, 0.06, (0.02, 0.09), "flips"),
])
def test_an_effect_holds_shrinks_or_flips(effect, scaled, ci, verdict):
    assert scale_verdict(effect, scaled, *ci) == verdict


@pytest.mark.parametrize("margin, gain, decision", [(0.0, 0.001, "candidate"), (0.0, -0.001, "discard"),
                                                    (1.0, 0.010, "discard"), (1.0, 0.025, "candidate")])
def test_the_screening_margin_decides_which_runs_go_on_to_validation(store, margin, gain, decision):
    """Any gain over the incumbent on the screening seed is validated by default (the power goal);
    ``critic.screening_margin`` asks for more, in noise floors."""
    from types import SimpleNamespace

    from autoresearch.campaign.judge import Judge
    from autoresearch.campaign.schedule import Runs
    from autoresearch.campaign.state import CampaignState
    from autoresearch.config import compose, to_experiment_config
    from autoresearch.result import COMPLETED, RunResult

    cfg = to_experiment_config(compose(["+campaign=quickstart", f"critic.screening_margin={margin}"]))
    campaign_id = store.upsert_campaign("c", {}, "quickstart", "/tmp/c")
    seeds = [1, 2, 3, 4]
    for seed, value in zip(seeds[:2], (4.00, 4.02)):  # noise floor σ = 0.0141
        tid = store.add_trial(campaign_id, None, kind="baseline", seed=seed, overrides={}, config={},
                              fingerprint="base", run_dir="")
        store.finish_trial(tid, COMPLETED, {"val_bpb": value})
    state = CampaignState(store, campaign_id, seeds)
    hyp_id = store.add_hypothesis(campaign_id, {"overrides": {"optim.lr": 0.01}, "agent": "test"}, status="proposed",
                                  fingerprint="h")
    screen = store.add_trial(campaign_id, hyp_id, kind="hypothesis", seed=1, overrides={"optim.lr": 0.01}, config={},
                             fingerprint="h", run_dir="")
    result = RunResult(status=COMPLETED, val_bpb=4.00 - gain)
    store.finish_trial(screen, COMPLETED, result.to_dict())
    runner = SimpleNamespace(capacity=1, composer=SimpleNamespace(fingerprint=lambda o: "h" if o else "base"))
    judge = Judge(cfg=cfg, store=store, state=state, runner=runner, space=None, campaign_dir=Path("/tmp/c"),
                  seeds=seeds, timeout_s=60, test_scorer=SimpleNamespace())  # nothing is validated here
    asked = next(judge.judge(screen, hyp_id, {"optim.lr": 0.01}, result), None)
    judge.close()
    assert store.trial(screen).decision == decision
    assert isinstance(asked, Runs) if decision == "candidate" else asked is None


PLANTED = {"optim.lr": 0.01, "model.activation": "swiglu"}


def discovery_judge(store, tmp_path, evaluate_test, *, budget="steps", workers=1):
    """A judge over a real store whose planted two-key hypothesis has its screening and validation
    runs finished (run directories with metrics.json): validating it reaches a verdict at once.
    Returns the judge, the hypothesis and its screening trial; called again on the same store, a
    judge of the same campaign (as a resumed run builds), and None for those two."""
    from types import SimpleNamespace

    from autoresearch.campaign.judge import Judge
    from autoresearch.campaign.state import CampaignState
    from autoresearch.config import compose, to_experiment_config
    from autoresearch.result import COMPLETED, RunResult
    from autoresearch.search import SearchSpace

    cfg = to_experiment_config(compose(["+campaign=quickstart", f"trainer.budget.kind={budget}"]))
    campaign = store.campaign("c")
    campaign_id = campaign.id if campaign else store.upsert_campaign("c", {}, "quickstart", str(tmp_path))
    seeds = [1, 2, 3, 4]
    hyp_id, screen = None, None
    if campaign is None:
        hyp_id = store.add_hypothesis(campaign_id, {"overrides": PLANTED, "agent": "test"}, status="proposed",
                                      fingerprint="h")

        def finished(kind, seed, value, overrides, fingerprint, hyp=None):
            run_dir = tmp_path / f"{kind}{seed}"
            run_dir.mkdir()
            RunResult(status=COMPLETED, val_bpb=value).save(run_dir / "metrics.json")
            tid = store.add_trial(campaign_id, hyp, kind=kind, seed=seed, overrides=overrides, config={},
                                  fingerprint=fingerprint, run_dir=str(run_dir))
            store.finish_trial(tid, COMPLETED, {"val_bpb": value})
            return tid

        for seed in seeds:
            finished("baseline", seed, 4.00 + 0.01 * seed, {}, "base")
        screen = finished("hypothesis", 1, 3.50, PLANTED, "h", hyp_id)
        for seed in seeds[1:]:
            finished("validation", seed, 3.50 + 0.01 * seed, PLANTED, "h", hyp_id)
    fingerprints = {(): "base", tuple(sorted(PLANTED)): "h"}
    runner = SimpleNamespace(capacity=workers, composer=SimpleNamespace(
        fingerprint=lambda overrides: fingerprints.get(tuple(sorted(overrides)), f"ablation {sorted(overrides)}")))
    judge = Judge(cfg=cfg, store=store, state=CampaignState(store, campaign_id, seeds), runner=runner,
                  space=SearchSpace.load("quickstart"), campaign_dir=tmp_path, seeds=seeds, timeout_s=60,
                  test_scorer=SimpleNamespace(evaluate_test=evaluate_test))
    return judge, hyp_id, screen


def held_scorer(released, asked):
    """The executor's test-split scorer, held until the test lets it finish."""
    from autoresearch.result import RunResult

    def evaluate_test(run_dir, timeout_s):
        asked.append(Path(run_dir).name)
        released.wait(30)
        metrics = RunResult.load(Path(run_dir) / "metrics.json")
        metrics.test_bpb = 3.6
        metrics.save(Path(run_dir) / "metrics.json")

    return evaluate_test


@pytest.mark.parametrize("budget, workers, first_wait", [("seconds", 1, "hold"), ("steps", 1, "ablation"),
                                                          ("seconds", 2, "ablation")])
def test_ablations_train_while_the_test_split_is_scored_unless_that_would_slow_a_timed_trial(
        store, tmp_path, budget, workers, first_wait):
    """A validated discovery's test-split scoring holds the only slot when a trial beside it would
    train fewer steps (one worker, a wall-clock budget); otherwise its ablations start at once and
    the score is recorded when both are done."""
    import threading

    from autoresearch.campaign.runner import TrialOutcome
    from autoresearch.campaign.schedule import Runs, Until
    from autoresearch.result import COMPLETED, RunResult

    released, asked = threading.Event(), []
    judge, hyp_id, screen = discovery_judge(store, tmp_path, held_scorer(released, asked), budget=budget,
                                            workers=workers)
    campaign_id = judge.state.campaign_id
    job = judge.validate(hyp_id, PLANTED, screen)
    wait = next(job)  # every validation run is in the store: the verdict comes before the first wait
    [finding] = store.findings(campaign_id)
    assert finding.status == "validated"
    _eventually(lambda: asked == ["hypothesis1"])  # the scoring has started, whatever comes next
    if first_wait == "hold":
        assert isinstance(wait, Until) and wait.exclusive and not wait.ready()
        released.set()
        _eventually(wait.ready)
        wait = job.send(None)
        assert store.finding(finding.id).test_bpb == pytest.approx(3.6)
    assert isinstance(wait, Runs) and {r.kind for r in wait.requests} == {"ablation"}
    assert len(wait.requests) == 2 * 3  # each key left out, on the three validation seeds
    outcomes = [TrialOutcome(trial_id=0, request=r, result=RunResult(status=COMPLETED, val_bpb=3.7))
                for r in wait.requests]
    if first_wait == "hold":
        with pytest.raises(StopIteration):
            job.send(outcomes)
    else:
        assert store.finding(finding.id).test_bpb is None  # still being scored while the ablations ran
        wait = job.send(outcomes)
        assert isinstance(wait, Until) and not wait.exclusive
        released.set()
        _eventually(wait.ready)
        with pytest.raises(StopIteration):
            job.send(None)
        assert store.finding(finding.id).test_bpb == pytest.approx(3.6)
    assert sorted(asked) == ["hypothesis1", "validation2", "validation3", "validation4"]
    assert "ablation" in store.finding(finding.id).details
    judge.close()


def test_a_discovery_whose_follow_ups_a_kill_cut_short_gets_them_on_resume(store, tmp_path):
    """Killed right after the verdict (test split being scored, no ablation run yet): the resumed
    campaign's judge scores the test split and runs the ablations; once they are done, nothing is owed."""
    import threading

    from autoresearch.campaign.runner import TrialOutcome
    from autoresearch.campaign.schedule import Runs, Until
    from autoresearch.result import COMPLETED, RunResult

    never, asked = threading.Event(), []
    judge, hyp_id, screen = discovery_judge(store, tmp_path, held_scorer(never, asked))
    next(judge.validate(hyp_id, PLANTED, screen))  # the verdict, then the campaign is killed
    judge.close()
    [finding] = store.findings(judge.state.campaign_id)
    assert finding.status == "validated" and finding.test_bpb is None and "ablation" not in finding.details

    released, asked_again = threading.Event(), []
    resumed, _, _ = discovery_judge(store, tmp_path, held_scorer(released, asked_again))
    [job] = resumed.resume_jobs()
    wait = next(job)
    assert isinstance(wait, Runs) and len(wait.requests) == 2 * 3 and {r.kind for r in wait.requests} == {"ablation"}
    wait = job.send([TrialOutcome(trial_id=0, request=r, result=RunResult(status=COMPLETED, val_bpb=3.7))
                     for r in wait.requests])
    assert isinstance(wait, Until)
    released.set()
    never.set()
    _eventually(wait.ready)
    with pytest.raises(StopIteration):
        job.send(None)
    finding = store.finding(finding.id)
    assert finding.test_bpb == pytest.approx(3.6) and "ablation" in finding.details
    assert sorted(asked_again) == ["hypothesis1", "validation2", "validation3", "validation4"]
    assert resumed.resume_jobs() == []  # nothing owed any more
    resumed.close()


def _eventually(condition, timeout=30.0):
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
