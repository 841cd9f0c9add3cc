"""Semantic memory of every experiment: what was tried, why, and how it came out.

Each finished trial is described in one line of text (rationale, sorted overrides, outcome and,
once the critic has judged it, the finding) and embedded into the KnowledgeStore. Agents ask
``nearest`` for the past experiments closest to an idea; the campaign asks ``find_duplicate``
before it spends a trial. Both look across every campaign in the store, not only the current one.

The memory is derived data: ``sync`` re-describes the store's trials and re-embeds only those
whose text changed (a decision or finding added later), so a store written without memory, or
with another embedder, catches up on first use.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import numpy as np

from autoresearch.knowledge.embedders import Embedder, cosine_top_k
from autoresearch.store import FindingRow, HypothesisRow, KnowledgeStore, TrialRow, trial_label

log = logging.getLogger(__name__)

TRIAL_KIND = "trial"  # embedding kind: a trial with its outcome
PROPOSAL_KIND = "hypothesis"  # embedding kind: a hypothesis's own words (rationale + expected effect)
# Validation re-runs repeat a hypothesis with other seeds; the finding summarises them, so they
# would only crowd the nearest-neighbour list with copies.
INDEXED_TRIAL_KINDS = ("baseline", "hypothesis", "ablation")
DEFAULT_DUPLICATE_THRESHOLD = 0.8


@dataclass(frozen=True, kw_only=True)
class Neighbour:
    """A past trial close to a query, with what an agent or a person needs to follow it up."""

    trial_id: int
    campaign: str
    score: float  # cosine similarity (1.0 for an exact config repeat)
    text: str
    run_dir: str
    status: str
    val_bpb: Optional[float]
    overrides: dict[str, Any] = field(default_factory=dict)
    decision: Optional[str] = None
    reason: str = ""  # for duplicates: why this one counts as the same experiment

    @property
    def label(self) -> str:
        return trial_label(self.trial_id)

    def summary(self) -> str:
        """One line for a prompt or a log: ``t0012 [rope_ablation] model.rope_base=1e+05 → val_bpb 2.5100, keep``."""
        result = f"val_bpb {self.val_bpb:.4f}" if self.val_bpb is not None else self.status
        if self.decision:
            result += f", {self.decision}"
        return f"{self.label} [{self.campaign}] {format_overrides(self.overrides)} → {result} (similarity {self.score:.2f})"


# ------------------------------------------------------------------------------ text
def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def format_overrides(overrides: Mapping[str, Any]) -> str:
    if not overrides:
        return "no overrides (baseline config)"
    return ", ".join(f"{k}={format_value(v)}" for k, v in sorted(overrides.items()))


def as_hypothesis_dict(hypothesis: Any) -> dict[str, Any]:
    """Accept a ``Hypothesis``, its ``to_dict()``, or a ``HypothesisRow``."""
    if isinstance(hypothesis, HypothesisRow):
        return hypothesis.to_hypothesis_dict()
    if hasattr(hypothesis, "to_dict"):
        hypothesis = hypothesis.to_dict()
    if not isinstance(hypothesis, Mapping):
        raise TypeError(f"expected a Hypothesis or its dict, got {type(hypothesis).__name__}")
    overrides = hypothesis.get("overrides")
    return {**hypothesis, "overrides": dict(overrides) if isinstance(overrides, Mapping) else {}}


def proposal_text(hypothesis: Any) -> str:
    """The hypothesis in its own words (rationale and expected effect), without the overrides."""
    h = as_hypothesis_dict(hypothesis)
    parts = [str(h.get("rationale") or "").strip(), str(h.get("expected_effect") or "").strip()]
    return " ".join(p for p in parts if p)


def describe(hypothesis: Any, outcome: Optional[Mapping[str, Any]] = None) -> str:
    """One line of text for an experiment: rationale, sorted overrides and (when known) outcome.

    ``outcome`` keys, all optional: ``status``, ``val_bpb``, ``baseline_bpb``, ``decision``
    (keep/discard), ``finding`` (a dict with ``status``, ``effect``, ``ci_low``, ``ci_high``), ``error``.
    Example: ``Larger base. overrides: model.rope_base=100000. outcome: val_bpb 2.5100
    (Δ -0.0400 vs baseline), kept``.
    """
    h = as_hypothesis_dict(hypothesis)
    parts = []
    rationale = str(h.get("rationale") or "").strip()
    if rationale:
        parts.append(rationale.rstrip(".") + ".")
    expected = str(h.get("expected_effect") or "").strip()
    if expected:
        parts.append(f"expected: {expected.rstrip('.')}.")
    parts.append(f"overrides: {format_overrides(h['overrides'])}.")
    if outcome:
        parts.append(f"outcome: {_describe_outcome(outcome)}")
    return " ".join(parts)


def _describe_outcome(outcome: Mapping[str, Any]) -> str:
    status = str(outcome.get("status") or "")
    bpb = _finite(outcome.get("val_bpb"))
    bits: list[str] = []
    if bpb is not None:
        text = f"val_bpb {bpb:.4f}"
        base = _finite(outcome.get("baseline_bpb"))
        if base is not None:
            text += f" (Δ {bpb - base:+.4f} vs baseline)"
        bits.append(text)
    if status and status != "completed":
        error = str(outcome.get("error") or "").strip().splitlines()
        bits.append(status + (f" ({error[-1][:120]})" if error and status == "crashed" else ""))
    decision = outcome.get("decision")
    if decision:
        bits.append({"keep": "kept", "discard": "discarded"}.get(str(decision), str(decision)))
    finding = outcome.get("finding")
    if isinstance(finding, Mapping) and finding.get("status"):
        f_text = f"{finding['status']}"
        effect, lo, hi = (_finite(finding.get(k)) for k in ("effect", "ci_low", "ci_high"))
        if effect is not None:
            f_text += f" (effect {effect:+.4f}"
            f_text += f", 95% CI [{lo:+.4f}, {hi:+.4f}])" if lo is not None and hi is not None else ")"
        bits.append(f_text)
    return ", ".join(bits) if bits else "no result"


def _finite(value: Any) -> Optional[float]:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def same_overrides(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Equal key sets and equal values, numbers compared by value (``1e5 == 100000``)."""
    if set(a) != set(b):
        return False
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, bool) or isinstance(y, bool):
            if type(x) is not type(y) or x != y:
                return False
        elif isinstance(x, (int, float)) and isinstance(y, (int, float)):
            if not math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12):
                return False
        elif str(x) != str(y):
            return False
    return True


# ------------------------------------------------------------------------------ memory
class Memory:
    """Embedded descriptions of past trials, searched by exact cosine similarity."""

    def __init__(self, store: KnowledgeStore, embedder: Embedder, *, duplicate_threshold: float = DEFAULT_DUPLICATE_THRESHOLD):
        self.store = store
        self.embedder = embedder
        self.duplicate_threshold = duplicate_threshold

    describe = staticmethod(describe)

    # -------------------------------------------------------------- writing
    def remember_trial(self, trial: TrialRow) -> str:
        """Embed one finished trial with its outcome now (``sync`` would also find it later)."""
        context = _Context(self.store)
        text = context.describe_trial(trial)
        self.store.put_embedding(TRIAL_KIND, trial.id, text, self.embedder.embed([text])[0], self.embedder.name)
        return text

    def remember_hypothesis(self, hypothesis: HypothesisRow) -> Optional[str]:
        """Embed a hypothesis's own words (for duplicate checks). Returns None when it has none."""
        text = proposal_text(hypothesis)
        if not text:
            return None
        self.store.put_embedding(PROPOSAL_KIND, hypothesis.id, text, self.embedder.embed([text])[0], self.embedder.name)
        return text

    def sync(self) -> dict[int, TrialRow]:
        """Bring the embedded descriptions up to date with the store; returns the indexed trials by id."""
        context = _Context(self.store)
        trials = {t.id: t for t in context.trials if t.finished and t.kind in INDEXED_TRIAL_KINDS}
        ids, texts, _ = self.store.embeddings(TRIAL_KIND, self.embedder.name)
        have = dict(zip(ids, texts))
        todo = [(tid, context.describe_trial(t)) for tid, t in trials.items()]
        todo = [(tid, text) for tid, text in todo if have.get(tid) != text]
        if todo:
            vectors = self.embedder.embed([text for _, text in todo])
            for (tid, text), vec in zip(todo, vectors):
                self.store.put_embedding(TRIAL_KIND, tid, text, vec, self.embedder.name)
            log.info("memory: embedded %d trial description(s) with %s", len(todo), self.embedder.name)
        return trials

    # -------------------------------------------------------------- reading
    def nearest(self, query: Any, k: int = 5, *, campaign_id: Optional[int] = None) -> list[Neighbour]:
        """The ``k`` past trials (all campaigns unless ``campaign_id``) most similar to a text or a hypothesis."""
        trials = self.sync()
        ids, texts, matrix = self.store.embeddings(TRIAL_KIND, self.embedder.name)
        keep = [i for i, tid in enumerate(ids) if tid in trials and (campaign_id is None or trials[tid].campaign_id == campaign_id)]
        if not keep:
            return []
        text = query if isinstance(query, str) else describe(query, None)
        q = self.embedder.embed([text])[0]
        idx, scores = cosine_top_k(q, matrix[keep], k)
        names = {c.id: c.name for c in self.store.campaigns()}
        out = []
        for i, score in zip(idx, scores):
            row = keep[int(i)]
            out.append(_neighbour(trials[ids[row]], names, float(score), texts[row]))
        return out

    def find_duplicate(self, hypothesis: Any, flat_config_fingerprint: Optional[str]) -> Optional[Neighbour]:
        """An earlier finished trial (any campaign) that this hypothesis would repeat, or None.

        A duplicate is (1) a trial whose resolved config had the same fingerprint, or (2) a trial
        whose hypothesis set identical overrides for a similar reason: cosine similarity of the
        rationales at least ``duplicate_threshold`` (when either side gave no rationale, identical
        overrides decide). Running trials do not count: they are either live in this campaign or
        died with a previous process, which resume handles.
        """
        h = as_hypothesis_dict(hypothesis)
        names = {c.id: c.name for c in self.store.campaigns()}
        if flat_config_fingerprint:
            exact = [t for t in self.store.find_by_fingerprint(flat_config_fingerprint) if t.finished]
            if exact:
                t = exact[0]
                reason = f"same resolved config (fingerprint {flat_config_fingerprint}) as {t.label} in campaign {names.get(t.campaign_id, '?')}"
                return _neighbour(t, names, 1.0, describe(h, None), reason=reason)

        context = _Context(self.store)
        candidates = [
            t
            for t in context.trials
            if t.finished and t.kind in INDEXED_TRIAL_KINDS and same_overrides(context.effective_overrides(t), h["overrides"])
        ]
        if not candidates:
            return None
        mine = proposal_text(h)
        mine_vec = self.embedder.embed([mine])[0] if mine else None
        best: Optional[tuple[float, TrialRow]] = None
        for t in candidates:
            theirs = context.proposal_text(t)
            if mine_vec is None or not theirs:
                score = 1.0
            else:
                score = float(np.dot(mine_vec, self._proposal_vector(t, theirs, context)))
            if score >= self.duplicate_threshold and (best is None or score > best[0]):
                best = (score, t)
        if best is None:
            return None
        score, t = best
        reason = (
            f"identical overrides ({format_overrides(h['overrides'])}) and a similar rationale "
            f"(similarity {score:.2f} ≥ {self.duplicate_threshold:.2f}) as {t.label} in campaign {names.get(t.campaign_id, '?')}"
        )
        return _neighbour(t, names, score, context.describe_trial(t), reason=reason)

    def _proposal_vector(self, trial: TrialRow, text: str, context: "_Context") -> np.ndarray:
        """The embedded proposal text of a trial's hypothesis, cached in the store by hypothesis id."""
        ref = trial.hypothesis_id if trial.hypothesis_id is not None else f"trial:{trial.id}"
        cached = context.proposal_vectors(self.store, self.embedder.name)
        hit = cached.get(ref)
        if hit is not None and hit[0] == text:
            return hit[1]
        vec = self.embedder.embed([text])[0]
        self.store.put_embedding(PROPOSAL_KIND, ref, text, vec, self.embedder.name)
        cached[ref] = (text, vec)
        return vec


def _neighbour(t: TrialRow, names: Mapping[int, str], score: float, text: str, *, reason: str = "") -> Neighbour:
    return Neighbour(
        trial_id=t.id,
        campaign=names.get(t.campaign_id, str(t.campaign_id)),
        score=score,
        text=text,
        run_dir=t.run_dir,
        status=t.status,
        val_bpb=t.val_bpb,
        overrides=dict(t.overrides),
        decision=t.decision,
        reason=reason,
    )


class _Context:
    """One read of the store's trials, hypotheses and findings, to describe many trials cheaply."""

    def __init__(self, store: KnowledgeStore):
        self.trials = store.trials()
        campaign_ids = sorted({t.campaign_id for t in self.trials})
        self.hypotheses: dict[int, HypothesisRow] = {}
        self.findings: dict[int, FindingRow] = {}
        self.baseline: dict[int, Optional[float]] = {}
        for cid in campaign_ids:
            self.hypotheses.update({h.id: h for h in store.hypotheses(cid)})
            # The latest finding per hypothesis wins (a re-assessment replaces an earlier verdict).
            self.findings.update({f.hypothesis_id: f for f in store.findings(cid) if f.hypothesis_id is not None})
        for cid in campaign_ids:
            values = [
                t.val_bpb
                for t in self.trials
                if t.campaign_id == cid and t.kind == "baseline" and t.status == "completed" and t.val_bpb is not None
            ]
            self.baseline[cid] = float(np.mean(values)) if values else None
        self._proposal_cache: Optional[dict[Any, tuple[str, np.ndarray]]] = None

    def hypothesis_dict(self, t: TrialRow) -> dict[str, Any]:
        h = self.hypotheses.get(t.hypothesis_id) if t.hypothesis_id is not None else None
        if h is not None:
            return h.to_hypothesis_dict()
        return {"overrides": dict(t.overrides), "rationale": t.kind if t.kind == "baseline" else ""}

    def effective_overrides(self, t: TrialRow) -> dict[str, Any]:
        h = self.hypotheses.get(t.hypothesis_id) if t.hypothesis_id is not None else None
        return dict(h.overrides) if h is not None else dict(t.overrides)

    def proposal_text(self, t: TrialRow) -> str:
        h = self.hypotheses.get(t.hypothesis_id) if t.hypothesis_id is not None else None
        return proposal_text(h) if h is not None else ""

    def describe_trial(self, t: TrialRow) -> str:
        outcome: dict[str, Any] = {
            "status": t.status,
            "val_bpb": t.val_bpb,
            "baseline_bpb": self.baseline.get(t.campaign_id) if t.kind != "baseline" else None,
            "decision": t.decision,
            "error": t.error,
        }
        finding = self.findings.get(t.hypothesis_id) if t.hypothesis_id is not None else None
        if finding is not None:
            outcome["finding"] = {"status": finding.status, "effect": finding.effect, "ci_low": finding.ci_low, "ci_high": finding.ci_high}
        return describe(self.hypothesis_dict(t), outcome)

    def proposal_vectors(self, store: KnowledgeStore, model: str) -> dict[Any, tuple[str, np.ndarray]]:
        if self._proposal_cache is None:
            ids, texts, matrix = store.embeddings(PROPOSAL_KIND, model)
            self._proposal_cache = {ref: (text, matrix[i]) for i, (ref, text) in enumerate(zip(ids, texts))}
        return self._proposal_cache
