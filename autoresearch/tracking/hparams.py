"""HParams summaries: one session per trial, one experiment definition per campaign.

TensorBoard's HParams view pairs a *session* (the hyperparameters of one run, written into
that run's log directory) with the scalar tags named as metrics (``hparam/val_bpb``). When one
run directory of the log tree also holds an *experiment* definition, its list of hparams and
metrics becomes the table's columns; the plugin takes the first one it finds, so only the
campaign writes it, at the root.

These summaries live in event files of their own (suffix ``.hparams``) that are replaced on
every write. That makes the writes idempotent (a campaign re-summarises after every trial) and
lets the campaign's summary of a trial (flattened overrides) replace the trial's own (flattened
full config) in the same run directory, so the table never shows one trial twice.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Iterable, Mapping

from autoresearch.tracking.base import flatten_hparams, metric_tags

log = logging.getLogger(__name__)

HPARAMS_SUFFIX = ".hparams"


def _summary(plugin_data: Any, tag: str) -> Any:
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.plugins.hparams import metadata

    summary = summary_pb2.Summary()
    summary.value.add(tag=tag, metadata=metadata.create_summary_metadata(plugin_data), tensor=metadata.NULL_TENSOR)
    return summary


def _replace_hparams_file(log_dir: Path, write: Any) -> None:
    """Delete the ``.hparams`` event files in ``log_dir`` and write a fresh one via ``write``."""
    from torch.utils.tensorboard import SummaryWriter

    log_dir.mkdir(parents=True, exist_ok=True)
    for old in log_dir.glob(f"events.out.tfevents.*{HPARAMS_SUFFIX}"):
        old.unlink()
    writer = SummaryWriter(log_dir=str(log_dir), filename_suffix=HPARAMS_SUFFIX)
    try:
        write(writer)
    finally:
        writer.close()


def write_session(log_dir: Path, hparams: Mapping[str, Any], metrics: Mapping[str, Any], *, trial_id: str, status: str = "success") -> None:
    """Write one HParams session (start info, metric scalars, end info) into ``log_dir``.

    ``hparams`` may be nested; it is flattened to dotted keys. ``metrics`` keys get the
    ``hparam/`` prefix unless they carry it. ``status`` is ``success`` or anything else
    (recorded as a failure, e.g. a diverged or crashed trial).
    """
    from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2
    from tensorboard.plugins.hparams import metadata
    from tensorboard.plugins.hparams.summary_v2 import hparams_pb

    flat = flatten_hparams(hparams)
    tags = metric_tags(metrics)
    now = time.time()
    start = hparams_pb(flat, trial_id=trial_id, start_time_secs=now)
    end = _summary(
        plugin_data_pb2.HParamsPluginData(
            session_end_info=plugin_data_pb2.SessionEndInfo(
                status=api_pb2.STATUS_SUCCESS if status == "success" else api_pb2.STATUS_FAILURE,
                end_time_secs=now,
            ),
            version=metadata.PLUGIN_DATA_VERSION,
        ),
        metadata.SESSION_END_INFO_TAG,
    )

    def write(writer: Any) -> None:
        writer.file_writer.add_summary(start, 0)
        for tag, value in tags.items():
            writer.add_scalar(tag, value, 0)
        writer.file_writer.add_summary(end, 0)

    _replace_hparams_file(Path(log_dir), write)


def write_experiment(log_dir: Path, hparam_names: Iterable[str], metric_names: Iterable[str]) -> None:
    """Write the experiment definition (columns of the HParams table) at ``log_dir``."""
    from tensorboard.plugins.hparams.summary_v2 import HParam, Metric, hparams_config_pb

    config = hparams_config_pb(
        hparams=[HParam(name) for name in sorted(set(hparam_names))],
        metrics=[Metric(tag, dataset_type=Metric.VALIDATION) for tag in sorted(set(metric_names))],
        time_created_secs=time.time(),
    )
    _replace_hparams_file(Path(log_dir), lambda writer: writer.file_writer.add_summary(config, 0))


def log_campaign_hparams(log_dir: Path, trials: list[tuple[str, dict, dict]]) -> None:
    """Summarise a campaign for the HParams view: ``tensorboard --logdir <log_dir>``.

    Each trial is ``(name, hparams, metrics)``: ``name`` is the trial's run directory relative
    to ``log_dir`` (pass the directory holding its curves, e.g. ``trials/0007/tb``, so its
    session and its curves are one run), ``hparams`` its flattened overrides (what the agent
    changed), ``metrics`` at least ``val_bpb``. Call it again after every trial; it rewrites
    the whole summary. Trials missing a hyperparameter simply show an empty cell.
    """
    log_dir = Path(log_dir)
    names: set[str] = set()
    metrics_seen: set[str] = set()
    for name, hparams, metrics in trials:
        run_dir = (log_dir / name).resolve()
        if run_dir == log_dir.resolve() or log_dir.resolve() not in run_dir.parents:
            raise ValueError(f"trial name {name!r} must be a sub-directory of {log_dir} (e.g. 'trials/0007/tb')")
        status = str(metrics.get("status", "completed"))
        write_session(run_dir, hparams, metrics, trial_id=name, status="success" if status in ("completed", "early_stopped", "success") else status)
        names.update(flatten_hparams(hparams))
        metrics_seen.update(metric_tags(metrics))
    write_experiment(log_dir, names, metrics_seen or {"hparam/val_bpb"})
    log.info("HParams summary of %d trial(s) written to %s", len(trials), log_dir)
