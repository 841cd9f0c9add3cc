"""``python -m autoresearch.repro``: promote, reproduce, train-discovery, bundle-check.

    python -m autoresearch.repro promote outputs/campaigns/demo shorter_warmup --trial t0007
    python -m autoresearch.repro reproduce outputs/runs/2026-01-01/12-00-00_baseline
    python -m autoresearch.repro train-discovery discoveries/x.yaml --out results/x   # what dvc repro runs
    python -m autoresearch.repro bundle-check outputs/campaigns/demo/trials/t0007

Exit status: 0 success (reproduced, intact), 1 not reproduced / bundle altered, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

os.environ.setdefault("DVC_NO_ANALYTICS", "1")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m autoresearch.repro", description="Bundles, reproduction and discoveries.")
    sub = p.add_subparsers(dest="command", required=True)

    pr = sub.add_parser("promote", help="freeze a finished trial as discoveries/<NAME>.yaml and register it in params.yaml")
    pr.add_argument("source", type=Path, help="a trial's run directory, or a campaign directory with --trial/--finding")
    pr.add_argument("name", help="discovery name: letters, digits, '_' and '-'")
    which = pr.add_mutually_exclusive_group()
    which.add_argument("--trial", help="trial id in the campaign directory (t0007 or 7)")
    which.add_argument("--finding", type=int, help="finding id: promote its hypothesis's screening trial")
    pr.add_argument("--repo-root", type=Path, default=Path.cwd(), help="where discoveries/ and params.yaml live (default: .)")
    pr.add_argument("--description", default="", help="one line saying what was found")

    rp = sub.add_parser("reproduce", help="rerun a bundle (or a run directory) and compare with its recorded metrics")
    rp.add_argument("path", type=Path)
    rp.add_argument("--out", type=Path, default=None, help="run directory of the rerun (default: outputs/repro/<name>-<time>)")
    rp.add_argument("--tolerance", type=float, default=None, help="absolute bpb tolerance (default: by budget and device)")
    rp.add_argument("--json", action="store_true", help="print the report as JSON")

    td = sub.add_parser("train-discovery", help="re-train discoveries/<name>.yaml (the DVC stage's command)")
    td.add_argument("discovery", type=Path)
    td.add_argument("--out", type=Path, required=True, help="results folder: metrics.json, curves, run/")
    td.add_argument("--data-dir", type=Path, default=None, help="DVC-versioned prepared data to train on when it matches")
    td.add_argument("--tolerance", type=float, default=None)
    td.add_argument("--no-check", action="store_true", help="exit 0 even when the metrics differ from the recorded ones")

    bc = sub.add_parser("bundle-check", help="verify a bundle's files against bundle.json and its lock hash")
    bc.add_argument("path", type=Path)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    from autoresearch.config import ConfigError
    from autoresearch.repro import BundleError, DiscoveryError
    from autoresearch.safety import install_log_safety, scrub_text, terminal_text

    install_log_safety()  # bundles come from elsewhere: their text must not forge or colour our lines
    try:
        return _run(args)
    except (BundleError, DiscoveryError, ConfigError, FileNotFoundError) as err:
        for line in str(err).splitlines():
            print(f"error: {terminal_text(scrub_text(line))}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from autoresearch.repro import check_bundle, promote, reproduce, train_discovery
    from autoresearch.safety import terminal_text
    from autoresearch.provenance.bundle import current_lock_sha256, find_bundle, load_index

    if args.command == "promote":
        path = promote(args.source, args.name, args.repo_root, trial=args.trial, finding=args.finding,
                       description=args.description)
        print(path)
        return 0
    if args.command == "reproduce":
        report = reproduce(args.path, out_dir=args.out, tolerance=args.tolerance)
        # The summary quotes the bundle (its recorded commit, status): shown, never acted on by the terminal.
        print(json.dumps(report.to_dict(), indent=2, default=float) if args.json else terminal_text(report.summary(), keep_newlines=True))
        return 0 if report.match else 1
    if args.command == "train-discovery":
        report = train_discovery(args.discovery, args.out, data_dir=args.data_dir, tolerance=args.tolerance)
        print(terminal_text(report.summary(), keep_newlines=True))
        return 0 if report.match or args.no_check else 1
    if args.command == "bundle-check":
        bundle = find_bundle(args.path)
        problems = check_bundle(bundle)
        for p in problems:
            print(terminal_text(f"altered: {p}"))
        if load_index(bundle).get("lock_sha256") != current_lock_sha256():
            print("note: this environment's packages differ from the bundle's requirements.lock")
        print(f"{bundle}: {'intact' if not problems else f'{len(problems)} problem(s)'}")
        return 0 if not problems else 1
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
