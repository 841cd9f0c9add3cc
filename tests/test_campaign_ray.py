"""A whole campaign on a real three-node Ray cluster started here (no mock of Ray).

``executor=ray executor.workers=2``: trials run as Ray actors wherever the cluster has a CPU, their
curves stream back into the store while they train, and their run directories come home. Midway a
node that is running a trial is removed; the campaign records that trial as an infrastructure
failure, runs it once more on a node that is left, and finishes with every hypothesis judged.
"""

from __future__ import annotations

import threading
from pathlib import Path

import psutil
import pytest

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402
from test_campaign import campaign_overrides, run  # noqa: E402

from autoresearch.executor import INFRASTRUCTURE_FAILURE  # noqa: E402
from autoresearch.store import KnowledgeStore  # noqa: E402

pytestmark = pytest.mark.slow
OBJECT_STORE = 80 * 1024 * 1024  # Ray's minimum is 75 MiB


@pytest.fixture
def cluster():
    # Fast failure detection, so a removed node is noticed within seconds.
    system = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 500, "health_check_failure_threshold": 4}
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "object_store_memory": OBJECT_STORE,
                                                      "include_dashboard": False, "_system_config": system})
    workers = [c.add_node(num_cpus=1, object_store_memory=OBJECT_STORE) for _ in range(2)]
    c.wait_for_nodes()
    yield c, workers
    ray.shutdown()
    c.shutdown()


def trains_a_trial(node) -> bool:
    """A trial process runs under this node's raylet: started cold (``python -m
    autoresearch.experiment``) or forked from an actor's fork server (named ``trial <run dir>``)."""
    raylet = psutil.Process(node.all_processes["raylet"][0].process.pid)
    for child in raylet.children(recursive=True):
        try:
            if "autoresearch.experiment" in " ".join(child.cmdline()) or child.name().startswith("trial "):
                return True
        except psutil.Error:
            continue
    return False


def remove_a_busy_node(c: Cluster, nodes, db: Path, stop: threading.Event, removed: list) -> None:
    """Once a hypothesis trial has streamed curve points, remove a worker node that trains a trial."""
    while not stop.wait(0.2):
        if not db.is_file():
            continue
        store = KnowledgeStore(db)
        try:
            campaign = store.campaign("quickstart")
            running = [t for t in store.trials(campaign.id, kind="hypothesis") if t.status == "running"] if campaign else []
            streaming = any(store.curve(t.id) for t in running)
        finally:
            store.close()
        if not streaming:
            continue
        for node in nodes:
            if trains_a_trial(node):
                c.remove_node(node)
                removed.append(node)
                return


def test_a_campaign_on_two_ray_workers_survives_a_node_removed_mid_trial(cluster, tmp_path):
    c, nodes = cluster
    db = tmp_path / "knowledge.sqlite"
    overrides = campaign_overrides(tmp_path, "agent=random", "campaign.max_trials=2", "critic.noise_seeds=2",
                                   "critic.validation_seeds=2", "trainer.budget.value=40", "executor=ray",
                                   "executor.workers=2", f"executor.address={c.address}")
    stop, removed = threading.Event(), []
    killer = threading.Thread(target=remove_a_busy_node, args=(c, nodes, db, stop, removed), daemon=True)
    killer.start()
    try:
        summary = run(overrides)
    finally:
        stop.set()
        killer.join(timeout=30)
    assert removed, "no worker node was ever seen training a trial"

    store = KnowledgeStore(db)
    campaign = store.campaign("quickstart")
    trials = store.trials(campaign.id)
    assert summary.trials == 2
    assert all(t.status != "running" for t in trials)
    failed = [t for t in trials if (t.error or "").startswith(INFRASTRUCTURE_FAILURE)]
    assert len(failed) == 1 and failed[0].status == "interrupted", [(t.id, t.status, t.error) for t in trials]
    [again] = [t for t in trials if (t.fingerprint, t.seed) == (failed[0].fingerprint, failed[0].seed)
               and t.id > failed[0].id]
    assert again.status in ("completed", "early_stopped")  # run once more, on a node that was left
    for trial in trials:
        if trial.status == "completed":
            assert store.curve(trial.id), "curve rows streamed back while it trained"
            assert (Path(trial.run_dir) / "metrics.json").is_file()  # the run directory came home
            assert (Path(trial.run_dir) / "bundle" / "environment.json").is_file()
    hypotheses = [t for t in trials if t.kind == "hypothesis" and t.status != "interrupted"]
    assert len(hypotheses) == 2 and all(t.decision in ("keep", "discard") for t in hypotheses)
    store.close()
