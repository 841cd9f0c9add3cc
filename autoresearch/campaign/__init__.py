"""The autonomous research loop: isolated trials, judged by the critic, remembered by the store.

``Campaign`` (or ``run_campaign``) is the public face; the rooms behind it are importable for
tests and tools: ``TrialRunner`` and its ``TrialRequest``/``TrialOutcome``, ``TrialComposer``,
``CampaignState``. Loaded on first use: ``autoresearch.campaign.startup`` starts the workers
before the rest (torch, the critic, the report) is imported.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from autoresearch.campaign.compose import TrialComposer
    from autoresearch.campaign.loop import Campaign, CampaignSummary, run_campaign
    from autoresearch.campaign.runner import TrialOutcome, TrialRequest, TrialRunner
    from autoresearch.campaign.state import CampaignState, Incumbent

_WHERE = {
    "Campaign": "loop",
    "CampaignState": "state",
    "CampaignSummary": "loop",
    "Incumbent": "state",
    "TrialComposer": "compose",
    "TrialOutcome": "runner",
    "TrialRequest": "runner",
    "TrialRunner": "runner",
    "run_campaign": "loop",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f"autoresearch.campaign.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
