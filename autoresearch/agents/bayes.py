"""The bayes agent: Ax (``from ax import Client``) over the search space, Sobol then BoTorch.

Ax learns from every finished trial, whoever proposed it: a trial this agent suggested is
completed in place; any other (the playbook's, the LLM's, a trial from before a resume) is
attached to the same experiment first. That keeps the Ax experiment a mirror of the store, so a
resumed campaign (``history`` replayed through ``observe``) suggests what it would have.

Ax knows nothing of our constraints (``n_embd % n_head == 0``) or of refused keys, so every
suggestion goes through ``validate_hypothesis``; a refused one is marked abandoned in Ax and Ax
is asked again, a bounded number of times, before the agent falls back to a random valid point.

``import ax`` costs seconds, so this module imports it only when an agent is built.
"""

from __future__ import annotations

import logging
import math
import random
from typing import Any, Optional

from autoresearch.agents.base import COMPLETED, EARLY_STOPPED, AgentContext, TrialRecord, history_seen, overrides_key
from autoresearch.agents.sampler import sample_valid
from autoresearch.config.schema import BayesAgentConfig
from autoresearch.search import (
    Hypothesis,
    Proposal,
    Refusal,
    SearchSpace,
    ax_parameters,
    from_ax,
    to_ax,
    validate_hypothesis,
)

log = logging.getLogger(__name__)

OBJECTIVE = "val_bpb"
_AX_RETRIES = 3  # suggestions refused by validate_hypothesis before falling back to a random point
_SAMPLE_TRIES = 20


class BayesAgent:
    """Ax ``Client`` with a Sobol initialisation of ``cfg.sobol_trials`` trials, then BoTorch."""

    def __init__(
        self,
        cfg: BayesAgentConfig,
        space: SearchSpace,
        base: dict[str, Any],
        *,
        history: list[TrialRecord] | tuple[TrialRecord, ...] = (),
        name: str = "bayes",
    ):
        from ax import Client

        self.name = name
        self.space = space
        self.base = dict(base)
        self.cfg = cfg
        self._rng = random.Random(cfg.seed)
        self._client = Client(random_seed=cfg.seed)
        self._client.configure_experiment(parameters=ax_parameters(space, base), name=f"autoresearch_{space.name}")
        self._client.configure_optimization(objective=f"-{OBJECTIVE}")
        # Sobol for the first ``sobol_trials`` trials (attached ones count: a resumed campaign
        # goes straight on with BoTorch), then BoTorch. Never blocked waiting for data: the
        # campaign may ask for the next trial while the last one still trains.
        self._client.configure_generation_strategy(
            method="fast",
            initialization_budget=cfg.sobol_trials,
            initialization_random_seed=cfg.seed,
            initialize_with_center=False,
            allow_exceeding_initialization_budget=True,
        )
        self._pending: dict[str, list[int]] = {}  # overrides key → Ax trials suggested, not yet observed
        self._status: dict[int, str] = {}  # Ax trial index → what we told Ax
        self._observed: set[Any] = set()  # trial ids already told to Ax
        self._baseline_attached = False
        for record in history:
            self.observe(record)

    # ------------------------------------------------------------------ inspection
    @property
    def ax_trials(self) -> dict[int, str]:
        """Ax trial index → status we gave it (running, completed, early_stopped, failed, abandoned)."""
        return dict(self._status)

    @property
    def client(self) -> Any:
        """The Ax ``Client`` (for analyses and tests; the agent owns its state)."""
        return self._client

    # ------------------------------------------------------------------ protocol
    def propose(self, ctx: AgentContext) -> Proposal:
        for record in ctx.history:  # idempotent: a record already observed is skipped
            self.observe(record)
        self._attach_baseline(ctx.baseline_bpb)
        # Ax re-suggests the point of a failed trial (it has no data there); refusing the repeat
        # marks it abandoned, which Ax then treats as pending and does not suggest again.
        seen = history_seen(ctx)
        refusals: list[Refusal] = []
        for _ in range(_AX_RETRIES):
            suggestion = self._suggest()
            if suggestion is None:
                break
            index, params, node = suggestion
            try:
                overrides = from_ax(params, self.space, self.base)
            except ValueError as err:
                refusals.append(Refusal(reason=f"Ax suggested an unusable point: {err}", raw=dict(params), agent=self.name, code="schema"))
                self._abandon(index)
                continue
            result = validate_hypothesis(
                {"overrides": overrides, "rationale": self._rationale(node), "expected_effect": self._expected(params, node)},
                space=self.space, base=self.base, agent=self.name, seen=seen,
            )
            if isinstance(result, Hypothesis):
                self._pending.setdefault(overrides_key(result.overrides), []).append(index)
                return Proposal(hypothesis=result, refusals=refusals)
            refusals.append(result)
            self._abandon(index)
        return self._fallback(ctx, refusals)

    def observe(self, record: TrialRecord) -> None:
        if _is_real_trial(record):
            if record.trial_id in self._observed:
                return
            self._observed.add(record.trial_id)
        key = overrides_key(record.overrides)
        queue = self._pending.get(key)
        index = queue.pop(0) if queue else None
        if queue is not None and not queue:
            del self._pending[key]
        if record.refused:
            if index is not None:
                self._abandon(index)  # the campaign refused it (a repeat, a known negative): it never ran
            return
        if index is None:
            index = self._attach(record.overrides, f"trial {record.trial_id}")
            if index is None:
                return
        self._finish(index, record)

    # ------------------------------------------------------------------ Ax calls
    def _suggest(self) -> Optional[tuple[int, dict[str, Any], str]]:
        try:
            trials = self._client.get_next_trials(max_trials=1)
        except Exception as err:  # noqa: BLE001 - a failed model fit must not end the campaign
            log.warning("Ax could not suggest a trial (%s: %s); using a random point", type(err).__name__, err)
            return None
        if not trials:
            log.warning("Ax suggested no trial; using a random point")
            return None
        phase = self._phase()
        index, params = next(iter(trials.items()))
        self._status[index] = "running"
        return index, dict(params), phase

    def _phase(self) -> str:
        """Which generator Ax uses for the next trial, mirroring its transition rule.

        Ax (1.3.1, ``configure_generation_strategy``) leaves Sobol once ``sobol_trials`` trials
        that neither failed nor were abandoned exist and at least ``max(1, sobol_trials // 2)``
        of them completed with data. Used only for the rationale text.
        """
        budget = self.cfg.sobol_trials
        counted = sum(1 for s in self._status.values() if s not in ("failed", "abandoned"))
        completed = sum(1 for s in self._status.values() if s == "completed")
        return "BoTorch" if counted >= budget and completed >= max(1, budget // 2) else "Sobol"

    def _attach(self, overrides: dict[str, Any], what: str) -> Optional[int]:
        try:
            index = self._client.attach_trial(parameters=to_ax(overrides, self.space, self.base))
        except Exception as err:  # noqa: BLE001 - a trial Ax cannot represent is skipped, not fatal
            log.warning("could not attach %s to the Ax experiment (%s: %s); Ax will not learn from it", what, type(err).__name__, err)
            return None
        self._status[index] = "running"
        return index

    def _finish(self, index: int, record: TrialRecord) -> None:
        value = record.val_bpb if record.has_value else None
        if record.status == COMPLETED and value is not None:
            self._client.complete_trial(index, raw_data={OBJECTIVE: float(value)})
            self._status[index] = "completed"
        elif record.status == EARLY_STOPPED and value is not None:
            # The partial value teaches Ax that this region looked poor when it was stopped.
            self._client.attach_data(index, raw_data={OBJECTIVE: float(value)})
            self._client.mark_trial_early_stopped(index)
            self._status[index] = "early_stopped"
        elif record.status == EARLY_STOPPED:
            self._abandon(index)  # stopped before any evaluation: nothing to learn
        else:
            self._client.mark_trial_failed(index, failed_reason=record.status)
            self._status[index] = "failed"

    def _abandon(self, index: int) -> None:
        self._client.mark_trial_abandoned(index)
        self._status[index] = "abandoned"

    def _attach_baseline(self, baseline_bpb: Optional[float]) -> None:
        """The campaign's baseline is the most informative point Ax can have; tell it once."""
        if self._baseline_attached or baseline_bpb is None or not math.isfinite(baseline_bpb):
            return
        self._baseline_attached = True
        index = self._attach({}, "the baseline")
        if index is not None:
            self._client.complete_trial(index, raw_data={OBJECTIVE: float(baseline_bpb)})
            self._status[index] = "completed"

    # ------------------------------------------------------------------ fallback and text
    def _fallback(self, ctx: AgentContext, refusals: list[Refusal]) -> Proposal:
        result = sample_valid(
            self.space, self.base, self._rng, agent=self.name, seen=history_seen(ctx), tries=_SAMPLE_TRIES,
            rationale="A random valid point: Ax's suggestions were refused or it could not suggest one.",
            expected_effect="exploration",
        )
        if isinstance(result, Hypothesis):
            index = self._attach(result.overrides, "a random fallback point")
            if index is not None:
                self._pending.setdefault(overrides_key(result.overrides), []).append(index)
            return Proposal(hypothesis=result, refusals=refusals)
        return Proposal(hypothesis=None, refusals=refusals)

    def _rationale(self, node: str) -> str:
        if node == "Sobol":
            return (
                f"Ax quasi-random (Sobol) exploration of search space {self.space.name}: "
                "initial coverage before the Gaussian-process model takes over."
            )
        return (
            "Ax Bayesian optimisation (BoTorch): a Gaussian process fitted to every finished "
            "trial so far picks the point with the best expected improvement in val_bpb."
        )

    def _expected(self, params: dict[str, Any], node: str) -> str:
        if node == "Sobol":
            return "unknown: exploration"
        try:
            (pred,) = self._client.predict([params])
            mean, sem = pred[OBJECTIVE]
            return f"model predicts val_bpb {float(mean):.4f} ± {float(sem):.4f}"
        except Exception:  # noqa: BLE001 - a prediction is a nicety
            return "lower val_bpb than the incumbent (expected improvement)"


def _is_real_trial(record: TrialRecord) -> bool:
    """Refusals and the campaign's synthetic records carry no trial id of their own (-1)."""
    return not record.refused and record.trial_id not in (None, -1, "")
