"""Trial process entry: ``python -m autoresearch.experiment RUN_DIR [--evaluate-test]``.

One process per trial, so a crash, an OOM or a segfault kills only the trial: forked from the
campaign's fork server, which imported torch once (``autoresearch.executor.forkserver``), or started
cold. The run directory already holds the resolved ``config.yaml``; nothing is composed here.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from autoresearch.config import ConfigError, load_config
from autoresearch.experiment import LOG_FILE, evaluate_test, exit_now, read_overrides, run_experiment
from autoresearch.safety import install_log_safety


def _setup_logging(run_dir: Path) -> None:
    fmt = logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for handler in (logging.FileHandler(run_dir / LOG_FILE), logging.StreamHandler(sys.stderr)):
        handler.setFormatter(fmt)
        root.addHandler(handler)
    install_log_safety()  # a trial's log holds no key and no forged line, like the campaign's


def warm_up() -> None:
    """Everything a run imports, imported once by the trial fork server (``autoresearch.executor.forkserver``).

    ``torch._dynamo`` is the expensive one (1-2.3 s here): AdamW's step imports it lazily.
    ``autoresearch.critic`` is left out: a run needs it only with sharpness checks on, and its
    scipy import (~0.8 s) would delay the campaign's first trial, which waits for this list.
    Then what every trial would read alike: the typed config schema its ``load_config`` merges into,
    the key libraries' versions and the code's git state its bundle records. No tensor operation
    (and nothing that starts CUDA) may run before the server forks.
    """
    import importlib

    from autoresearch.config import structured_schema
    from autoresearch.provenance import imported_code_version, library_versions

    for module in ("torch", "torch._dynamo", "torch.utils.tensorboard", "autoresearch.train", "autoresearch.data",
                   "autoresearch.repro", "autoresearch.tracking"):
        try:
            importlib.import_module(module)
        except ImportError:  # an optional piece (tensorboard) missing costs its import later, nothing more
            pass
    structured_schema()
    library_versions()
    imported_code_version()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autoresearch.experiment", description=__doc__)
    parser.add_argument("run_dir", help="directory holding config.yaml (and overrides.yaml)")
    parser.add_argument("--evaluate-test", action="store_true", help="score the saved weights on the test split")
    args = parser.parse_args(argv)
    run_dir = Path(args.run_dir)
    from autoresearch.train import tune_allocator

    tune_allocator()
    if not (run_dir / "config.yaml").is_file():
        print(f"error: {run_dir / 'config.yaml'}: no such file", file=sys.stderr)
        return 2
    _setup_logging(run_dir)
    try:
        if args.evaluate_test:
            print(f"test_bpb: {evaluate_test(run_dir):.6f}")
            return 0
        cfg = load_config(run_dir / "config.yaml")
        result = run_experiment(cfg, run_dir, overrides=read_overrides(run_dir), write_spec=False)
    except ConfigError as err:
        for line in str(err).splitlines():
            logging.getLogger("autoresearch").error("%s", line)
        return 2
    summary = result.summary()
    with open(run_dir / LOG_FILE, "a") as fh:
        fh.write(summary + "\n")
    print(summary)
    return 0


if __name__ == "__main__":
    exit_now(main())  # everything the run owes is on disk: no ~0.9 s teardown on the campaign's critical path
