"""Campaign reports: ``report.md``, ``progress.png`` and ``results.tsv``, from the store alone."""

from autoresearch.report.plot import load_pyplot
from autoresearch.report.read import CampaignRecord, read_campaign
from autoresearch.report.report import write_report

__all__ = ["CampaignRecord", "preload", "read_campaign", "write_report"]


def preload() -> None:
    """Pay for the report's imports ahead of time (a campaign does it while its trials train)."""
    load_pyplot()
