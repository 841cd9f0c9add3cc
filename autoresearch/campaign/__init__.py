"""The autonomous research loop: isolated trials, judged by the critic, remembered by the store.

``Campaign`` (or ``run_campaign``) is the public face; the rooms behind it are importable for
tests and tools: ``TrialRunner`` and its ``TrialRequest``/``TrialOutcome``, ``TrialComposer``,
``CampaignState``.
"""

from autoresearch.campaign.compose import TrialComposer
from autoresearch.campaign.loop import Campaign, CampaignSummary, run_campaign
from autoresearch.campaign.runner import TrialOutcome, TrialRequest, TrialRunner
from autoresearch.campaign.state import CampaignState, Incumbent

__all__ = [
    "Campaign",
    "CampaignState",
    "CampaignSummary",
    "Incumbent",
    "TrialComposer",
    "TrialOutcome",
    "TrialRequest",
    "TrialRunner",
    "run_campaign",
]
