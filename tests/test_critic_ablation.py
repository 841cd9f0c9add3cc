"""Ablation graph: leave-one-out schedules respect depends_on, attribution is additive, PNG drawn."""

from __future__ import annotations

import math

import pytest

from autoresearch.critic import Ablation, AblationGraph

# rope_ablation-like space: rope_base only matters under rope; rope_scaling below rope_base.
EDGES = [
    ("model.pos_encoding", "model.rope_base"),
    ("model.rope_base", "model.rope_scaling"),
    ("model.n_layer", "model.layer_drop"),
]
OVERRIDES = {"model.pos_encoding": "rope", "model.rope_base": 500000.0, "model.rope_scaling": 2.0, "optim.lr": 0.01}


def test_leave_one_out_removes_parents_with_their_children_parents_first():
    graph = AblationGraph(EDGES, set(OVERRIDES))
    ablations = graph.leave_one_out(OVERRIDES)
    assert [a.removed for a in ablations] == [
        ("model.pos_encoding", "model.rope_base", "model.rope_scaling"),
        ("model.rope_base", "model.rope_scaling"),
        ("model.rope_scaling",),
        ("optim.lr",),
    ]
    assert ablations[0].overrides == {"optim.lr": 0.01}
    assert ablations[1].overrides == {"model.pos_encoding": "rope", "optim.lr": 0.01}
    assert ablations[3] == Ablation(removed=("optim.lr",), overrides={k: v for k, v in OVERRIDES.items() if k != "optim.lr"})
    assert ablations[0].key == "model.pos_encoding"


def test_removal_follows_edges_through_keys_the_discovery_left_alone():
    # pos_encoding -> rope_base -> rope_scaling, but the discovery did not change rope_base:
    # reverting pos_encoding still deactivates rope_base and with it rope_scaling.
    keys = {"model.pos_encoding", "model.rope_scaling"}
    graph = AblationGraph(EDGES, keys)
    removed = [a.removed for a in graph.leave_one_out({"model.pos_encoding": "rope", "model.rope_scaling": 2.0})]
    assert removed == [("model.pos_encoding", "model.rope_scaling"), ("model.rope_scaling",)]


def test_attribution_is_additive_over_the_dag():
    graph = AblationGraph(EDGES, set(OVERRIDES))
    drops = {"model.pos_encoding": 0.030, "model.rope_base": 0.012, "model.rope_scaling": 0.002, "optim.lr": 0.005}
    out = graph.attribute(drops)
    assert out == pytest.approx(
        {"model.pos_encoding": 0.018, "model.rope_base": 0.010, "model.rope_scaling": 0.002, "optim.lr": 0.005}
    )
    # each group's attributed effects sum to its measured drop
    for key, drop in drops.items():
        assert sum(out[k] for k in graph.group(key)) == pytest.approx(drop)
    # ablations may be given by their removed tuples too; a missing one is nan upward
    partial = graph.attribute({("model.rope_base", "model.rope_scaling"): 0.012, "optim.lr": 0.005})
    assert math.isnan(partial["model.rope_scaling"]) and math.isnan(partial["model.rope_base"])
    assert math.isnan(partial["model.pos_encoding"]) and partial["optim.lr"] == pytest.approx(0.005)


def test_bad_graphs_and_keys_are_refused():
    with pytest.raises(ValueError, match="cycle"):
        AblationGraph([("a", "b"), ("b", "a")], {"a"})
    graph = AblationGraph(EDGES, {"optim.lr"})
    with pytest.raises(ValueError, match="model.n_layer"):
        graph.leave_one_out({"optim.lr": 0.01, "model.n_layer": 2})
    with pytest.raises(ValueError, match="not one of"):
        graph.attribute({"model.n_layer": 0.1})


def test_draw_writes_a_png(tmp_path):
    graph = AblationGraph(EDGES, set(OVERRIDES))
    graph.attribute({"model.pos_encoding": 0.03, "model.rope_base": 0.012, "model.rope_scaling": 0.002, "optim.lr": 0.005})
    path = graph.draw(tmp_path / "sub" / "ablation.png", title="discovery 7")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    other = graph.draw(tmp_path / "given.png", {"optim.lr": 0.001})  # labels passed in explicitly
    assert other.read_bytes() != data
