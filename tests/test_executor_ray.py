"""The Ray executor against a real two-node Ray cluster started here (no mock of Ray).

The head node and a second node each offer one CPU; trials are pinned to the second node with a
custom resource, so everything they need travels as it would between machines: the spec goes out,
curve rows stream back while they train, a stop request reaches them, and the run directory comes
home when they end. The node is removed mid-trial last (the cluster is shared by the module).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

from autoresearch.config import compose, to_experiment_config  # noqa: E402
from autoresearch.config.executor import ExecutorConfig  # noqa: E402
from autoresearch.executor import INFRASTRUCTURE_FAILURE, TrialResources, make_executor  # noqa: E402
from autoresearch.experiment import (  # noqa: E402
    COMPLETED,
    CRASHED,
    CURVE_FILE,
    EARLY_STOPPED,
    LOG_FILE,
    METRICS_FILE,
    RunResult,
    write_run_spec,
)

pytestmark = pytest.mark.slow

SECOND_NODE = TrialResources(num_cpus=1, custom={"second_node": 1})
OBJECT_STORE = 80 * 1024 * 1024  # Ray's minimum is 75 MiB


@pytest.fixture(scope="module")
def cluster():
    # Fast failure detection, so a removed node is noticed within seconds.
    system = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 500, "health_check_failure_threshold": 4}
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "object_store_memory": OBJECT_STORE,
                                                      "include_dashboard": False, "_system_config": system})
    second = c.add_node(num_cpus=1, object_store_memory=OBJECT_STORE, resources={"second_node": 1})
    c.wait_for_nodes()
    ray.init(address=c.address, log_to_driver=False)
    yield c, second
    ray.shutdown()
    c.shutdown()


@pytest.fixture(scope="module")
def executor(cluster):
    c, _ = cluster
    ex = make_executor(ExecutorConfig(kind="ray", workers=2, address=c.address))
    yield ex
    ex.close()


def spec(run_dir: Path, overrides: list[str]) -> Path:
    write_run_spec(to_experiment_config(compose(overrides)), run_dir, overrides)
    return run_dir


def first_rows(handle, timeout_s: float = 240.0) -> list[dict]:
    """Poll until the remote trial has streamed at least one curve row."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        rows = handle.poll()
        if rows:
            return rows
        handle.wait(0.2)
    pytest.fail(f"no curve row streamed within {timeout_s:.0f} s")


def test_a_trial_runs_on_the_second_node_and_its_run_dir_comes_home_with_the_local_result(
        executor, cluster, tmp_path, tiny_overrides):
    _, second = cluster
    remote_dir = spec(tmp_path / "remote", tiny_overrides)
    handle = executor.start(1, remote_dir, timeout_s=300, resources=SECOND_NODE)
    streamed = []
    while not handle.wait(0.2):
        streamed += handle.poll()
    streamed += handle.poll()
    result = handle.finish()
    assert result.status == COMPLETED, result.error
    assert not handle.infrastructure_failure
    assert handle.node_id == second.node_id
    # the whole run directory came back: metrics, curve, log, bundle
    for name in (METRICS_FILE, CURVE_FILE, LOG_FILE, "bundle/environment.json"):
        assert (remote_dir / name).is_file(), name
    assert RunResult.load(remote_dir / METRICS_FILE).val_bpb == result.val_bpb
    assert streamed == [json.loads(line) for line in (remote_dir / CURVE_FILE).read_text().splitlines()]

    # Where it ran does not change what it measured: the same spec trained locally agrees.
    local = make_executor(ExecutorConfig(workers=1, threads_per_worker=1), warm=False)
    try:
        here = local.start(2, spec(tmp_path / "here", tiny_overrides), timeout_s=300).finish()
    finally:
        local.close()
    assert here.val_bpb == result.val_bpb


def test_a_remote_trial_streams_its_curve_and_a_stop_request_ends_it_early(executor, tmp_path, tiny_overrides):
    run_dir = spec(tmp_path / "stopped", [*tiny_overrides, "trainer.budget.value=100000", "trainer.log_every=1"])
    handle = executor.start(3, run_dir, timeout_s=300, resources=SECOND_NODE)
    rows = first_rows(handle)
    assert rows[0]["step"] >= 1 and not handle.done  # streamed while it still trains
    handle.request_stop("critic: a loser")
    result = handle.finish()
    assert result.status == EARLY_STOPPED, result.error
    assert 0 < result.progress < 0.5 and not handle.infrastructure_failure
    assert (run_dir / METRICS_FILE).is_file()


def test_an_actor_whose_trial_ended_runs_the_next_trial_with_the_same_resources(executor, tmp_path, tiny_overrides):
    """Workers stay warm: the actor (and the fork server in it, which imported torch once) that ran
    one trial on the second node runs the next one there too; the result is the same."""
    first = executor.start(5, spec(tmp_path / "first", tiny_overrides), timeout_s=300, resources=SECOND_NODE)
    first_result = first.finish()
    second = executor.start(6, spec(tmp_path / "second", tiny_overrides), timeout_s=300, resources=SECOND_NODE)
    second_result = second.finish()
    assert first_result.status == second_result.status == COMPLETED, (first_result.error, second_result.error)
    assert first.worker_id and second.worker_id == first.worker_id and second.node_id == first.node_id
    assert second_result.val_bpb == first_result.val_bpb


def test_a_node_that_dies_mid_trial_gives_an_infrastructure_failure(executor, cluster, tmp_path, tiny_overrides):
    c, second = cluster
    run_dir = spec(tmp_path / "orphaned", [*tiny_overrides, "trainer.budget.value=100000"])
    handle = executor.start(4, run_dir, timeout_s=300, resources=SECOND_NODE)
    first_rows(handle)
    c.remove_node(second)
    assert handle.wait(120), "the trial was not noticed dead"
    result = handle.finish()
    assert handle.infrastructure_failure
    assert result.status == CRASHED and result.error.startswith(INFRASTRUCTURE_FAILURE)
