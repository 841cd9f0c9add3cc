"""Campaign reports: ``report.md`` and ``progress.png``, from the store alone."""

from autoresearch.report.report import plot_progress, write_report

__all__ = ["plot_progress", "write_report"]
