"""The critic: what makes a finding trustworthy (statistics) and a campaign fast (early stopping).

It works on plain data — val_bpb values and learning curves ``[(progress, val_bpb), ...]`` — and
never imports the trainer, the campaign or the store: they call it.
"""

from autoresearch.critic.assess import Assessment, assess
from autoresearch.critic.curves import Curve, clean_curve, final_value, read_curve, synthetic_curves, value_at
from autoresearch.critic.early_stopping import (
    EarlyStopper,
    HalvingStopper,
    NoStopper,
    PercentileStopper,
    StopDecision,
    make_early_stopper,
)
from autoresearch.critic.replay import CurveBank, ReplayRun, ReplaySummary, replay, replay_strategies
from autoresearch.critic.stats import (
    INCONCLUSIVE,
    REJECTED,
    VALIDATED,
    VERDICTS,
    Comparison,
    NoiseFloor,
    benjamini_hochberg,
    classify,
    compare,
    noise_floor,
)

__all__ = [
    "INCONCLUSIVE",
    "REJECTED",
    "VALIDATED",
    "VERDICTS",
    "Assessment",
    "Comparison",
    "Curve",
    "CurveBank",
    "EarlyStopper",
    "HalvingStopper",
    "NoStopper",
    "NoiseFloor",
    "PercentileStopper",
    "ReplayRun",
    "ReplaySummary",
    "StopDecision",
    "assess",
    "benjamini_hochberg",
    "classify",
    "clean_curve",
    "compare",
    "final_value",
    "make_early_stopper",
    "noise_floor",
    "read_curve",
    "replay",
    "replay_strategies",
    "synthetic_curves",
    "value_at",
]
