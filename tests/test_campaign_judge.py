"""The judge's scale ladder on its own: how a model is made k× larger, and how an effect is said
to hold, shrink or flip at that size (the campaign test runs a real rung end to end)."""

from __future__ import annotations

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
