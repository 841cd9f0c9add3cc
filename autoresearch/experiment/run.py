"""One experiment end to end: a run directory in, a scored ``RunResult`` out.

Used three ways: by ``python -m autoresearch`` (one baseline run inside Hydra's run dir), by the
campaign (each trial in its own process: ``python -m autoresearch.experiment RUN_DIR``), and by
reproduction (``dvc repro``, ``autoresearch.repro reproduce``). All three write the same layout,
described in docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Optional, Sequence

import torch

from autoresearch.config import ExperimentConfig, load_config, to_dict
from autoresearch.experiment.layout import CHECKPOINT_FILE, CONFIG_FILE, CURVE_FILE, METRICS_FILE, STOP_FILE, write_run_spec
from autoresearch.result import RunResult

log = logging.getLogger(__name__)

def _cache_root(cfg: ExperimentConfig) -> Path:
    return Path(os.path.expanduser(cfg.data.cache_dir))


def run_experiment(
    cfg: ExperimentConfig,
    run_dir: Path,
    *,
    overrides: Sequence[str] = (),
    stop_file: Optional[Path] = None,
    bundle: bool = True,
    write_spec: bool = True,
) -> RunResult:
    """Train ``cfg`` and leave everything a person or a campaign needs in ``run_dir``.

    The curve streams to ``curve.jsonl`` while training; ``metrics.json`` is written last, so its
    presence means the run finished (whatever its status). ``write_spec=False`` when ``cfg`` was
    read from ``run_dir`` itself (a campaign's trial process): the spec is already there.
    """
    from autoresearch.data import prepare_data
    from autoresearch.tracking import make_tracker
    from autoresearch.train import NanoTrainer

    started = time.perf_counter()
    run_dir = Path(run_dir)
    if write_spec:
        write_run_spec(cfg, run_dir, overrides)
    (run_dir / CURVE_FILE).unlink(missing_ok=True)
    data = prepare_data(cfg.data)
    log.info("data: %s (%s tokenizer, %d train / %d val tokens)", data.manifest.get("source"),
             data.tokenizer.name, len(data.train), len(data.val))
    if bundle:
        from autoresearch.provenance import write_bundle

        write_bundle(run_dir, config=to_dict(cfg), overrides=list(overrides), seed=cfg.seed,
                     data_manifest_sha256=data.manifest_sha256)
    tracker = make_tracker(cfg.logger, run_dir / "tb", run_name=cfg.name)
    try:
        trainer = NanoTrainer(cfg, data, curve_path=run_dir / CURVE_FILE,
                              stop_file=stop_file if stop_file is not None else run_dir / STOP_FILE,
                              tracker=tracker, cache_dir=_cache_root(cfg))
        log.info("model: %.3fM parameters, %d layers, device %s, %d tokens/step",
                 trainer.model.num_params() / 1e6, cfg.model.n_layer, trainer.device, trainer.tokens_per_step)
        result = trainer.train()
        if cfg.trainer.save_checkpoint and result.status == "completed":
            torch.save({"model": trainer.model.state_dict(), "model_config": to_dict(cfg)["model"],
                        "vocab_size": trainer.model_cfg.vocab_size}, run_dir / CHECKPOINT_FILE)
        result.total_seconds = time.perf_counter() - started
        if hasattr(tracker, "log_hparams"):
            from autoresearch.config import flatten

            tracker.log_hparams(flatten(to_dict(cfg)), {"hparam/val_bpb": result.val_bpb})
    finally:
        tracker.close()
    result.save(run_dir / METRICS_FILE)
    if bundle:
        from autoresearch.provenance import finalize_bundle

        finalize_bundle(run_dir)  # the bundle carries the recorded metrics a reproduction compares with
    return result


def evaluate_test(run_dir: Path) -> float:
    """Score a finished run's saved weights on the held-out test split, once, and record it.

    The only code path that reads the test split: training and selection never call it; the
    critic calls it for validated discoveries.
    """
    from autoresearch.data import prepare_data
    from autoresearch.train import NanoTrainer

    run_dir = Path(run_dir)
    metrics = RunResult.load(run_dir / METRICS_FILE)
    if metrics.test_bpb is not None:
        return metrics.test_bpb
    ckpt = run_dir / CHECKPOINT_FILE
    if not ckpt.is_file():
        raise FileNotFoundError(f"{ckpt}: no saved weights (trainer.save_checkpoint was off, or the run did not complete)")
    cfg = load_config(run_dir / CONFIG_FILE)
    data = prepare_data(cfg.data)
    trainer = NanoTrainer(cfg, data, cache_dir=_cache_root(cfg))
    trainer.model.load_state_dict(torch.load(ckpt, map_location=trainer.device)["model"])
    started = time.perf_counter()
    metrics.test_bpb = trainer.evaluate_split("test", cfg.trainer.final_eval_bytes)
    metrics.test_eval_seconds = time.perf_counter() - started
    metrics.save(run_dir / METRICS_FILE)
    log.info("test_bpb %.6f (%s)", metrics.test_bpb, run_dir)
    return metrics.test_bpb
