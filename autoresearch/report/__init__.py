"""Campaign reports: ``report.md``, ``progress.png`` and ``results.tsv``, from the store alone."""

from autoresearch.report.read import CampaignRecord, read_campaign
from autoresearch.report.report import write_report

__all__ = ["CampaignRecord", "read_campaign", "write_report"]
