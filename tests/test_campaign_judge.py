"""The judge's scale ladder on its own: how a model is made k× larger, and how an effect is said
to hold, shrink or flip at that size (the campaign test runs a real rung end to end)."""

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
    from autoresearch.executor import TrialLauncher
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
    runner = SimpleNamespace(composer=SimpleNamespace(fingerprint=lambda overrides: "h" if overrides else "base"))
    judge = Judge(cfg=cfg, store=store, state=state, runner=runner, space=None, campaign_dir=Path("/tmp/c"),
                  seeds=seeds, timeout_s=60, test_scorer=TrialLauncher())
    asked = next(judge.judge(screen, hyp_id, {"optim.lr": 0.01}, result), None)
    judge.close()
    assert store.trial(screen).decision == decision
    assert isinstance(asked, Runs) if decision == "candidate" else asked is None
