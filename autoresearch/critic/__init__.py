"""The critic: what makes a finding trustworthy (statistics) and a campaign fast (early stopping).

It works on plain data — val_bpb values and learning curves ``[(progress, val_bpb), ...]`` — and
never imports the trainer, the campaign or the store: they call it.

* statistics: ``noise_floor``, ``compare``, ``benjamini_hochberg``, ``classify`` and the pipeline
  that chains them, ``assess`` (verdicts: validated / rejected / inconclusive; never a verdict
  from fewer than ``MIN_RUNS`` runs a side; ``interval_level(alpha)`` is the CI's level);
* early stopping: ``make_early_stopper(cfg, StopperContext(...))`` → an ``EarlyStopper`` (none,
  Ax percentile, GP learning curve, successive halving) answering ``should_stop`` with a
  ``StopDecision``; the context carries the campaign's noise floor and earlier campaigns' curves;
  ``replay_strategies`` replays them offline over a ``CurveBank``;
* ablations: ``AblationGraph`` (leave-one-out schedule over ``depends_on`` edges, attribution, PNG).

Sharpness (a Hessian-trace monitor that acts *during* training) lives in ``autoresearch.train``.
"""

from autoresearch.critic.ablation import Ablation, AblationGraph
from autoresearch.critic.assess import Assessment, assess
from autoresearch.critic.curves import (
    Curve,
    clean_curve,
    evaluation_noise,
    final_value,
    read_curve,
    synthetic_curves,
    value_at,
)
from autoresearch.critic.early_stopping import HalvingStopper, NoStopper, PercentileStopper, make_early_stopper
from autoresearch.critic.learning_curve import CurveStopper, LearningCurveModel
from autoresearch.critic.replay import CurveBank, ReplayRun, ReplaySummary, earlier_campaign, replay, replay_strategies
from autoresearch.critic.stats import (
    INCONCLUSIVE,
    MIN_RUNS,
    REJECTED,
    VALIDATED,
    VERDICTS,
    Comparison,
    NoiseFloor,
    benjamini_hochberg,
    classify,
    compare,
    interval_level,
    noise_floor,
)
from autoresearch.critic.stopping import EarlyStopper, StopDecision, StopperContext

__all__ = [
    "INCONCLUSIVE",
    "MIN_RUNS",
    "REJECTED",
    "VALIDATED",
    "VERDICTS",
    "Ablation",
    "AblationGraph",
    "Assessment",
    "Comparison",
    "Curve",
    "CurveBank",
    "CurveStopper",
    "EarlyStopper",
    "HalvingStopper",
    "LearningCurveModel",
    "NoStopper",
    "NoiseFloor",
    "PercentileStopper",
    "ReplayRun",
    "ReplaySummary",
    "StopDecision",
    "StopperContext",
    "assess",
    "benjamini_hochberg",
    "classify",
    "clean_curve",
    "compare",
    "earlier_campaign",
    "evaluation_noise",
    "final_value",
    "interval_level",
    "make_early_stopper",
    "noise_floor",
    "read_curve",
    "replay",
    "replay_strategies",
    "synthetic_curves",
    "value_at",
]
