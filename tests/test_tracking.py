"""Trackers write what TensorBoard (and W&B) will show; read the event files back to prove it."""

from __future__ import annotations

import math
import sys
import types
from pathlib import Path

import pytest

from autoresearch.config import ConfigError, LoggerConfig
from autoresearch.tracking import (
    NullTracker,
    TensorBoardTracker,
    Tracker,
    WandbTracker,
    log_campaign_hparams,
    make_tracker,
)


def _accumulator(path: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(path), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def _session(acc):
    from tensorboard.plugins.hparams import metadata

    content = acc.PluginTagToContent("hparams")
    start = metadata.parse_session_start_info_plugin_data(content[metadata.SESSION_START_INFO_TAG])
    return {k: (v.WhichOneof("kind"), getattr(v, v.WhichOneof("kind"))) for k, v in start.hparams.items()}, start


def _curve_rows():
    rows = []
    for step in range(0, 25, 5):
        row = {"step": step, "tokens": step * 256, "seconds": step * 0.1, "flops": 1e9 * step, "progress": step / 20,
               "lr": 1e-3 * (1 - step / 40), "train_loss": 5.0 - 0.1 * step, "tokens_per_s": 1000.0 + step}
        if step % 10 == 0:
            row["val_bpb"] = 3.0 - 0.05 * step
        if step == 20:
            row["sharpness"] = 12.5
        rows.append(row)
    return rows


def test_tensorboard_tracker_writes_curve_scalars_under_their_tags(tmp_path):
    rows = _curve_rows()
    with TensorBoardTracker(tmp_path / "tb") as tracker:
        assert isinstance(tracker, Tracker)
        for row in rows:
            tracker.log_scalars(row["step"], row)
    acc = _accumulator(tmp_path / "tb")
    tags = set(acc.Tags()["scalars"])
    assert {"train/loss", "val/bpb", "lr", "tokens_per_s", "sharpness"} <= tags
    assert not tags & {"step", "tokens", "seconds", "flops", "progress"}  # axes are not curves
    loss = [(e.step, e.value) for e in acc.Scalars("train/loss")]
    assert loss == [(r["step"], pytest.approx(r["train_loss"])) for r in rows]
    assert [(e.step, round(e.value, 5)) for e in acc.Scalars("val/bpb")] == [(0, 3.0), (10, 2.5), (20, 2.0)]
    assert [e.step for e in acc.Scalars("sharpness")] == [20]


def test_tensorboard_hparams_session_round_trips(tmp_path):
    tracker = TensorBoardTracker(tmp_path / "tb", run_name="trial-3")
    tracker.log_scalars(1, {"train_loss": 4.0})
    tracker.log_hparams({"model": {"n_layer": 2, "pos_encoding": "rope", "qk_norm": True}, "data": {"path": None}},
                        {"val_bpb": 2.25, "status": "completed", "test_bpb": float("nan")})
    tracker.close()
    acc = _accumulator(tmp_path / "tb")
    hparams, start = _session(acc)
    assert start.group_name == "trial-3"
    assert hparams == {
        "model.n_layer": ("number_value", 2.0),
        "model.pos_encoding": ("string_value", "rope"),
        "model.qk_norm": ("bool_value", True),
        "data.path": ("string_value", "None"),
    }
    assert [e.value for e in acc.Scalars("hparam/val_bpb")] == [2.25]
    assert "hparam/test_bpb" not in acc.Tags()["scalars"]  # NaN is an empty cell, not a value


def test_campaign_hparams_one_session_per_trial_and_one_experiment(tmp_path):
    from tensorboard.plugins.hparams import api_pb2, metadata

    campaign = tmp_path / "campaigns" / "demo"
    trials = [
        ("trials/0000/tb", {"optim.lr": 0.003}, {"val_bpb": 2.5}),
        ("trials/0001/tb", {"optim.lr": 0.01, "model.n_layer": 4}, {"val_bpb": 2.3}),
        ("trials/0002/tb", {"model.activation": "swiglu"}, {"val_bpb": 2.4, "status": "diverged"}),
    ]
    # Each trial's own tracker has already written a session of its full config and its curve.
    for name, _, metrics in trials:
        with TensorBoardTracker(campaign / name) as t:
            t.log_scalars(10, {"train_loss": 3.0, "val_bpb": metrics["val_bpb"]})
            t.log_hparams({"optim.lr": 1.0, "seed": 1337}, metrics)
    log_campaign_hparams(campaign, trials[:2])
    log_campaign_hparams(campaign, trials)  # idempotent: rewritten, not appended

    root = _accumulator(campaign)
    experiment = metadata.parse_experiment_plugin_data(root.PluginTagToContent("hparams")[metadata.EXPERIMENT_TAG])
    assert sorted(h.name for h in experiment.hparam_infos) == ["model.activation", "model.n_layer", "optim.lr"]
    assert [m.name.tag for m in experiment.metric_infos] == ["hparam/val_bpb"]
    for name, hparams, metrics in trials:
        acc = _accumulator(campaign / name)
        got, start = _session(acc)
        assert {k: v[1] for k, v in got.items()} == hparams  # the overrides replaced the full config
        assert [e.value for e in acc.Scalars("hparam/val_bpb")] == [pytest.approx(metrics["val_bpb"])]
        assert [e.step for e in acc.Scalars("train/loss")] == [10]  # curves untouched
        assert len(list((campaign / name).glob("*.hparams"))) == 1
        end = metadata.parse_session_end_info_plugin_data(acc.PluginTagToContent("hparams")[metadata.SESSION_END_INFO_TAG])
        expected = api_pb2.STATUS_FAILURE if metrics.get("status") == "diverged" else api_pb2.STATUS_SUCCESS
        assert end.status == expected


def test_campaign_hparams_refuses_a_trial_outside_the_log_dir(tmp_path):
    with pytest.raises(ValueError, match="sub-directory"):
        log_campaign_hparams(tmp_path / "c", [("../elsewhere", {"a": 1}, {"val_bpb": 1.0})])


def test_make_tracker_by_kind(tmp_path):
    assert isinstance(make_tracker(LoggerConfig(kind="none"), tmp_path / "tb", "r"), NullTracker)
    assert not (tmp_path / "tb").exists()  # none writes nothing
    tb = make_tracker(LoggerConfig(kind="tensorboard"), tmp_path / "tb", "r")
    assert isinstance(tb, TensorBoardTracker)
    tb.close()
    with pytest.raises(ConfigError, match="logger.kind"):
        make_tracker(LoggerConfig(kind="mlflow"), tmp_path / "x", "r")


def test_wandb_selected_but_missing_is_a_clear_config_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb → ImportError
    with pytest.raises(ConfigError, match=r"logger.kind: is 'wandb' but the wandb package is not installed"):
        make_tracker(LoggerConfig(kind="wandb"), tmp_path / "wb", "r")


class _FakeWandbConfig(dict):
    def update(self, d, allow_val_change=False):
        assert allow_val_change  # a re-logged value must not raise inside a finished run
        super().update(d)


class _FakeWandbRun:
    """The W&B service is the true edge: record what the tracker hands it."""

    def __init__(self, **kwargs):
        self.init = kwargs
        self.logged: list[tuple[int, dict]] = []
        self.config = _FakeWandbConfig()
        self.summary: dict = {}
        self.finished = False

    def log(self, data, step):
        self.logged.append((step, dict(data)))

    def finish(self):
        self.finished = True


def test_wandb_tracker_offline_with_the_same_shape(tmp_path, monkeypatch):
    runs: list[_FakeWandbRun] = []

    def init(**kwargs):
        runs.append(_FakeWandbRun(**kwargs))
        return runs[-1]

    monkeypatch.setitem(sys.modules, "wandb", types.SimpleNamespace(init=init))
    tracker = make_tracker(LoggerConfig(kind="wandb", project="p"), tmp_path / "wb", "trial-1")
    assert isinstance(tracker, WandbTracker)
    tracker.log_scalars(5, {"step": 5, "train_loss": 3.5, "lr": 0.001, "note": "x"})
    tracker.log_hparams({"model": {"n_layer": 2}, "data": {"path": None}}, {"val_bpb": 2.0, "test_bpb": math.nan})
    tracker.close()
    (run,) = runs
    assert (run.init["mode"], run.init["project"], run.init["name"]) == ("offline", "p", "trial-1")
    assert run.logged == [(5, {"train/loss": 3.5, "lr": 0.001})]
    assert dict(run.config) == {"model.n_layer": 2, "data.path": "None"}
    assert run.summary == {"hparam/val_bpb": 2.0}
    assert run.finished


def test_wandb_mode_is_checked(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", types.SimpleNamespace(init=lambda **kw: None))
    with pytest.raises(ConfigError, match="logger.mode"):
        make_tracker(LoggerConfig(kind="wandb", mode="offlne"), tmp_path / "wb", "r")


def test_null_tracker_accepts_everything():
    t = NullTracker()
    assert isinstance(t, Tracker)
    t.log_scalars(0, {"train_loss": 1.0})
    t.log_hparams({"a": {"b": 1}}, {"val_bpb": 1.0})
    t.close()
