"""The autonomous research loop: isolated trials, judged by the critic, remembered by the store."""

from autoresearch.campaign.loop import Campaign, CampaignSummary, run_campaign
from autoresearch.campaign.trial import RunningTrial, TrialLauncher

__all__ = ["Campaign", "CampaignSummary", "RunningTrial", "TrialLauncher", "run_campaign"]
