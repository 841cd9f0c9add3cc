"""A campaign's account — ``report.md``, ``progress.png``, ``results.tsv`` — from the store alone.

Written at the end of every campaign and on demand (``python -m autoresearch.report DIR``), so a
person who wakes up to a finished — or a killed — campaign sees the same account: what was
tried, what the critic concluded, and how far the search got. The store is read once
(``read.read_campaign``); the three writers share that record, so they never disagree.
"""

from __future__ import annotations

import logging
from pathlib import Path

from autoresearch.report.markdown import render
from autoresearch.report.plot import plot_progress
from autoresearch.report.read import read_campaign
from autoresearch.report.tsv import write_results_tsv

log = logging.getLogger(__name__)


def write_report(campaign_dir: Path, store, name: str) -> Path:
    """Write ``report.md``, ``progress.png`` and ``results.tsv`` into ``campaign_dir``; return the report."""
    campaign_dir = Path(campaign_dir)
    campaign_dir.mkdir(parents=True, exist_ok=True)
    record = read_campaign(store, name, campaign_dir)
    write_results_tsv(record, campaign_dir / "results.tsv")
    png = plot_progress(record, campaign_dir / "progress.png")
    path = campaign_dir / "report.md"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(render(record, plot=png))
    tmp.replace(path)
    log.info("wrote %s", path)
    return path
