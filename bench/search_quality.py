"""Search quality, side by side: how fast does each agent find a good configuration?

    python bench/search_quality.py                                  # the measurement in docs/MEASUREMENTS.md
    python bench/search_quality.py --quick                          # smoke test: a few tiny trials
    python bench/search_quality.py --spaces quickstart --agents random,hybrid,tpe --trials 20

Every agent — ``random``, ``bayes`` (Ax), ``playbook``, ``hybrid`` (Ax + playbook), as the
package ships them (``conf/agent/<kind>.yaml`` composed with the space's campaign), and Optuna's
TPE sampler through a small adapter (``TPEAgent`` below) — searches the same space for the same
number of trials. Each proposal passes the campaign's gate (``validate_hypothesis``, with the
repeat check over the trials already run); a refused one costs no trial and is told to the agent
as a refusal, as the campaign does. Trials train the real model with the real trainer
(``autoresearch.train.NanoTrainer``) in this process, on a tiny model and a step budget, so the
result does not depend on how busy the machine is, and are scored by the real final val_bpb.

Each repeat uses its own training seed and its own agent seeds; within a repeat every agent
searches the same objective (same seed, same data), so the agents can be compared repeat by
repeat (paired). A configuration is trained once per seed: results are cached by config
fingerprint, and a point an agent proposes that another agent already trained costs nothing.

Printed: best-so-far val_bpb against trials (mean ± sd over repeats), the trials each agent needs
to reach random search's final best (per repeat, same objective), the final best per agent, and
the paired difference hybrid − TPE with its 95 % t interval over repeats. A PNG plot and a JSON
file with every trial go to ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from autoresearch.agents import AgentContext, TrialRecord, make_agent  # noqa: E402
from autoresearch.config import ExperimentConfig, compose, flatten, to_dict, to_experiment_config  # noqa: E402
from autoresearch.search import (  # noqa: E402
    Hypothesis,
    Proposal,
    Refusal,
    SearchSpace,
    config_fingerprint,
    validate_hypothesis,
)

log = logging.getLogger("search_quality")

AGENTS = ("random", "bayes", "playbook", "hybrid", "tpe")
SPACES = ("quickstart", "lr_schedule")
OUT = Path(__file__).resolve().parent / "results"
# The tiny model every trial trains (keys a space searches keep the space's value).
TINY = {"model.n_layer": 2, "model.n_embd": 32, "model.n_head": 2, "model.block_size": 32}
MAX_REFUSALS_IN_A_ROW = 10  # as the campaign: a search that only gets refused ends
CHECKPOINTS = (1, 5, 10, 15, 20, 30, 40, 50)


# --------------------------------------------------------------------------- the objective
class Objective:
    """Trains a configuration of one space at one seed; caches val_bpb by config fingerprint."""

    def __init__(self, space_name: str, *, steps: int, seed: int, eval_bytes: int, extra: tuple[str, ...] = ()):
        overrides = [f"+campaign={space_name}"] if (_campaign_dir() / f"{space_name}.yaml").is_file() else []
        overrides += list(extra)
        space = SearchSpace.load(space_name)
        tiny = [f"{k}={v}" for k, v in TINY.items() if k not in space.parameters]
        overrides += tiny + [
            "logger=none", "trainer.device=cpu", "trainer.budget.kind=steps", f"trainer.budget.value={steps}",
            "trainer.batch_size=16", "trainer.eval_points=1", f"trainer.eval_bytes={eval_bytes}",
            f"trainer.final_eval_bytes={eval_bytes}", "trainer.save_checkpoint=false", "trainer.untimed_warmup_steps=0",
            "trainer.threads=1", f"seed={seed}",
        ]
        self.space = space
        self.base_overrides = overrides
        self.cfg = to_experiment_config(compose(overrides))
        self.base = flatten(to_dict(self.cfg))
        self.cache: dict[str, float] = {}
        self.trained = 0
        self.train_seconds = 0.0
        self._data = None

    def fingerprint(self, overrides: dict[str, Any]) -> str:
        return config_fingerprint({**self.base, **overrides})

    def __call__(self, overrides: dict[str, Any]) -> float:
        """Final val_bpb of the base config with ``overrides`` (NaN when training diverged)."""
        key = self.fingerprint(overrides)
        if key not in self.cache:
            self.cache[key] = self._train(overrides)
        return self.cache[key]

    def _train(self, overrides: dict[str, Any]) -> float:
        from autoresearch.data import prepare_data
        from autoresearch.train import NanoTrainer

        cfg = with_overrides(self.cfg, overrides)
        if self._data is None:
            self._data = prepare_data(cfg.data)
        started = time.process_time()
        result = NanoTrainer(cfg, self._data).train()
        self.train_seconds += time.process_time() - started
        self.trained += 1
        value = result.val_bpb if result.status == "completed" else float("nan")
        return float(value) if value is not None and math.isfinite(value) else float("nan")


def _campaign_dir() -> Path:
    from autoresearch.config import CONF_DIR

    return Path(CONF_DIR) / "campaign"


def with_overrides(cfg: ExperimentConfig, overrides: dict[str, Any]) -> ExperimentConfig:
    """``cfg`` with dotted-key overrides applied to its dataclasses, checked like a composed config.

    The same result as composing the overrides with Hydra (the keys are schema keys, already
    validated by the gate), without Hydra's ~0.5 s per compose.
    """
    for key, value in overrides.items():
        cfg = _replace_path(cfg, key.split("."), value)
    problems = cfg.problems()
    if problems:
        raise ValueError("; ".join(str(p) for p in problems))
    return cfg


def _replace_path(obj: Any, path: list[str], value: Any) -> Any:
    head, rest = path[0], path[1:]
    inner = getattr(obj, head)
    return dataclasses.replace(obj, **{head: _replace_path(inner, rest, value) if rest else value})


# --------------------------------------------------------------------------- TPE as an agent
class TPEAgent:
    """Optuna's TPE sampler behind the ``Agent`` protocol (ask/tell over the space's parameters).

    The space becomes a define-by-run trial: each parameter is suggested only when its
    ``depends_on`` condition holds (parents first), ranges as ``suggest_float``/``suggest_int``
    with their log scale, choices as ``suggest_categorical``; fixed parameters keep their value.
    A suggestion the gate refuses (a constraint, a repeat) is told to Optuna as failed and TPE
    asks again. TPE learns from its own trials and the baseline, as it would in plain use.
    """

    name = "tpe"

    def __init__(self, space: SearchSpace, base: dict[str, Any], *, seed: int, startup_trials: int = 10):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.space = space
        self.base = base
        self._optuna = optuna
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup_trials)
        self.study = optuna.create_study(direction="minimize", sampler=sampler)
        self._pending: dict[str, Any] = {}  # fingerprint → optuna trial
        self._baseline_told = False

    def propose(self, ctx: AgentContext) -> Proposal:
        self._tell_baseline(ctx.baseline_bpb)
        seen = _seen_of(ctx)
        refusals: list[Refusal] = []
        for _ in range(20):
            trial = self.study.ask()
            overrides = self._suggest(trial)
            result = validate_hypothesis(
                {"overrides": overrides, "rationale": "Optuna TPE suggestion", "expected_effect": "lower val_bpb"},
                space=self.space, base=self.base, agent=self.name, seen=seen,
            )
            if isinstance(result, Hypothesis):
                self._pending[config_fingerprint({**self.base, **result.overrides})] = trial
                return Proposal(hypothesis=result, refusals=refusals)
            refusals.append(result)
            self.study.tell(trial, state=self._optuna.trial.TrialState.FAIL)
        return Proposal(hypothesis=None, refusals=refusals)

    def observe(self, record: TrialRecord) -> None:
        trial = self._pending.pop(config_fingerprint({**self.base, **record.overrides}), None)
        if trial is None:
            return
        if record.has_value:
            self.study.tell(trial, float(record.val_bpb))
        else:
            self.study.tell(trial, state=self._optuna.trial.TrialState.FAIL)

    def _suggest(self, trial: Any) -> dict[str, Any]:
        values = dict(self.base)
        overrides: dict[str, Any] = {}
        for key in _parents_first(self.space):
            p = self.space.parameters[key]
            if p.type == "fixed" or not self.space.is_active(key, values):
                continue
            if p.type == "range":
                lo, hi = p.bounds
                if p.value_type == "int":
                    v: Any = trial.suggest_int(key, int(lo), int(hi), log=p.log_scale)
                else:
                    v = trial.suggest_float(key, float(lo), float(hi), log=p.log_scale)
            else:
                v = trial.suggest_categorical(key, list(p.values))
            values[key] = v
            if self.base.get(key) != v:
                overrides[key] = v
        return overrides

    def _tell_baseline(self, baseline_bpb: Optional[float]) -> None:
        """The baseline as a finished trial, when its values lie inside the space."""
        if self._baseline_told or baseline_bpb is None or not math.isfinite(baseline_bpb):
            return
        self._baseline_told = True
        dist = self._optuna.distributions
        params, dists = {}, {}
        for key, p in self.space.parameters.items():
            if p.type == "fixed" or not self.space.is_active(key, self.base) or key not in self.base:
                continue
            v = self.base[key]
            if p.type == "range":
                lo, hi = p.bounds
                if not lo <= v <= hi:
                    return
                dists[key] = (dist.IntDistribution(int(lo), int(hi), log=p.log_scale) if p.value_type == "int"
                              else dist.FloatDistribution(float(lo), float(hi), log=p.log_scale))
            else:
                if v not in p.values:
                    return
                dists[key] = dist.CategoricalDistribution(list(p.values))
            params[key] = v
        self.study.add_trial(self._optuna.trial.create_trial(params=params, distributions=dists, value=baseline_bpb))


def _parents_first(space: SearchSpace) -> list[str]:
    from graphlib import TopologicalSorter

    graph = {k: [d for d in p.depends_on if d in space.parameters] for k, p in space.parameters.items()}
    return list(TopologicalSorter(graph).static_order())


def _seen_of(ctx: AgentContext):
    done = {config_fingerprint({**ctx.base, **r.overrides}) for r in ctx.history if not r.refused}
    return lambda fp: "an earlier trial of this search" if fp in done else None


# --------------------------------------------------------------------------- one search
@dataclass
class SearchRun:
    space: str
    agent: str
    repeat: int
    baseline: float
    values: list[float] = field(default_factory=list)  # val_bpb per trial, in order (NaN = diverged)
    proposers: list[str] = field(default_factory=list)
    configs: list[dict[str, Any]] = field(default_factory=list)  # each trial's overrides (what was found, not just how well)
    refusals: int = 0
    seconds: float = 0.0

    def best_so_far(self, trials: int) -> list[float]:
        """Best val_bpb after 1..trials trials, the baseline included (a search that ended carries on flat)."""
        out, best = [], self.baseline
        for i in range(trials):
            if i < len(self.values) and math.isfinite(self.values[i]):
                best = min(best, self.values[i])
            out.append(best)
        return out


def build_agent(kind: str, objective: Objective, seed: int):
    if kind == "tpe":
        return TPEAgent(objective.space, objective.base, seed=seed)
    acfg = to_experiment_config(compose(objective.base_overrides + [f"agent={kind}"])).agent
    # Deterministic and offline: the playbook is the hybrid's partner; each repeat seeds Ax anew.
    acfg = dataclasses.replace(acfg, partner_kind="playbook", bayes=dataclasses.replace(acfg.bayes, seed=seed))
    return make_agent(acfg, objective.space, objective.base, seed=seed)


def search(kind: str, objective: Objective, *, trials: int, seed: int, repeat: int,
           on_trial: Optional[Any] = None) -> SearchRun:
    """One agent's search of ``trials`` trials, gated and recorded as a campaign would.

    ``on_trial(run)`` is called after every trial (the bench saves the unfinished search with it).
    """
    started = time.perf_counter()
    agent = build_agent(kind, objective, seed)
    baseline = objective({})
    run = SearchRun(space=objective.space.name, agent=kind, repeat=repeat, baseline=baseline)
    history: list[TrialRecord] = []
    incumbent: Optional[TrialRecord] = None
    in_a_row = 0
    while len(run.values) < trials and in_a_row < MAX_REFUSALS_IN_A_ROW:
        done = {objective.fingerprint(r.overrides) for r in history if not r.refused} | {objective.fingerprint({})}
        ctx = AgentContext(space=objective.space, base=objective.base, history=list(history), incumbent=incumbent,
                           baseline_bpb=baseline, remaining_trials=trials - len(run.values))
        proposal = agent.propose(ctx)
        run.refusals += len(proposal.refusals)
        hyp = proposal.hypothesis
        checked: Hypothesis | Refusal | None = None
        if hyp is not None:
            checked = validate_hypothesis(hyp.to_dict(), space=objective.space, base=objective.base, agent=hyp.agent,
                                          seen=lambda fp: "an earlier trial" if fp in done else None)
        if not isinstance(checked, Hypothesis):
            in_a_row += 1
            run.refusals += checked is not None
            if hyp is not None:
                agent.observe(TrialRecord(trial_id=-1, overrides=dict(hyp.overrides), status="refused",
                                          agent=hyp.agent, rationale=hyp.rationale))
            continue
        in_a_row = 0
        value = objective(checked.overrides)
        ok = math.isfinite(value)
        best = incumbent.val_bpb if incumbent is not None else baseline
        record = TrialRecord(trial_id=len(run.values) + 1, overrides=dict(checked.overrides),
                             status="completed" if ok else "diverged", val_bpb=value if ok else None,
                             agent=checked.agent, rationale=checked.rationale, kept=ok and value < best)
        if record.kept:
            incumbent = record
        history.append(record)
        agent.observe(record)
        run.values.append(value)
        run.proposers.append(checked.agent)
        run.configs.append(dict(checked.overrides))
        if on_trial is not None:
            run.seconds = time.perf_counter() - started
            on_trial(run)
    run.seconds = time.perf_counter() - started
    return run


# --------------------------------------------------------------------------- summaries
def summarise(runs: list[SearchRun], agents: list[str], trials: int) -> tuple[str, dict[str, Any]]:
    """The printed tables, and the same numbers as a dict for the JSON file."""
    from scipy import stats

    out: list[str] = []
    numbers: dict[str, Any] = {}
    for space in dict.fromkeys(r.space for r in runs):
        by_agent = {a: sorted((r for r in runs if r.space == space and r.agent == a), key=lambda r: r.repeat) for a in agents}
        repeats = sorted({r.repeat for r in runs if r.space == space})
        curves = {a: np.array([r.best_so_far(trials) for r in rs]) for a, rs in by_agent.items() if rs}
        baseline = np.mean([r.baseline for r in runs if r.space == space])
        out.append(f"\n## {space}: best-so-far val_bpb (mean ± sd over {len(repeats)} repeats; baseline {baseline:.4f})\n")
        points = [c for c in CHECKPOINTS if c <= trials] + ([trials] if trials not in CHECKPOINTS else [])
        out.append("| agent | " + " | ".join(f"{c} trials" for c in points) + " |")
        out.append("|---|" + "---|" * len(points))
        for a, c in curves.items():
            cells = [f"{c[:, p - 1].mean():.4f} ± {c[:, p - 1].std(ddof=1) if len(c) > 1 else 0:.4f}" for p in points]
            out.append(f"| {a} | " + " | ".join(cells) + " |")
        # Trials to reach random search's final best, repeat by repeat (same objective).
        reach: dict[str, list[Optional[int]]] = {}
        if "random" in curves:
            target = curves["random"][:, -1]
            for a, c in curves.items():
                reach[a] = []
                for i in range(len(c)):
                    hit = np.nonzero(c[i] <= target[i] + 1e-12)[0]
                    reach[a].append(int(hit[0]) + 1 if len(hit) else None)
        out.append(f"\n| agent | final best (mean ± sd) | trials to reach random's final best (per repeat) | "
                   f"median | ≤ {trials // 3} trials (⅓) | refusals | trials run |")
        out.append("|---|---|---|---|---|---|---|")
        space_numbers: dict[str, Any] = {}
        for a, c in curves.items():
            final = c[:, -1]
            hits = reach.get(a, [])
            shown = ", ".join(str(h) if h is not None else f">{trials}" for h in hits) or "n/a"
            med = _median_reach(hits, trials)
            third = sum(1 for h in hits if h is not None and h <= trials // 3)
            refusals = sum(r.refusals for r in by_agent[a])
            out.append(f"| {a} | {final.mean():.4f} ± {final.std(ddof=1) if len(final) > 1 else 0:.4f} | {shown} | "
                       f"{med} | {third}/{len(hits)} | {refusals} | {sum(len(r.values) for r in by_agent[a])} |")
            space_numbers[a] = {"final_mean": float(final.mean()), "final_sd": float(final.std(ddof=1)) if len(final) > 1 else 0.0,
                                "reach_random_best": hits, "curve_mean": c.mean(axis=0).tolist(),
                                "curve_sd": (c.std(axis=0, ddof=1) if len(c) > 1 else np.zeros(trials)).tolist()}
        if "hybrid" in curves and "tpe" in curves and len(curves["hybrid"]) == len(curves["tpe"]):
            d = curves["hybrid"][:, -1] - curves["tpe"][:, -1]
            n = len(d)
            if n > 1:
                half = stats.t.ppf(0.975, n - 1) * d.std(ddof=1) / math.sqrt(n)
                ci = f"[{d.mean() - half:+.4f}, {d.mean() + half:+.4f}]"
            else:
                ci = "n/a (one repeat)"
            out.append(f"\nhybrid − TPE final best, paired by repeat: {d.mean():+.4f} (95 % t interval over {n} repeats "
                       f"{ci}; per repeat {', '.join(f'{x:+.4f}' for x in d)}; negative = hybrid better)")
            space_numbers["hybrid_minus_tpe"] = {"mean": float(d.mean()), "per_repeat": d.tolist(), "ci95": ci}
        numbers[space] = space_numbers
    return "\n".join(out), numbers


def _overrides_for(space: str, overrides: list[str]) -> list[str]:
    """``quickstart:model=gpt2_plain`` applies to quickstart only; an override without a prefix to every space."""
    out = []
    for o in overrides:
        head, sep, rest = o.partition(":")
        if sep and "=" not in head:
            if head == space:
                out.append(rest)
        else:
            out.append(o)
    return out


def _median_reach(hits: list[Optional[int]], trials: int) -> str:
    if not hits:
        return "n/a"
    vals = sorted(h if h is not None else trials + 1 for h in hits)
    m = vals[len(vals) // 2] if len(vals) % 2 else (vals[len(vals) // 2 - 1] + vals[len(vals) // 2]) / 2
    return f">{trials}" if m > trials else f"{m:g}"


def plot(runs: list[SearchRun], agents: list[str], trials: int, path: Path) -> None:
    """Best-so-far curves per space: the whole range above, and below a close-up of the last stretch,
    with random search's final best (dashed) and the ⅓-of-the-budget mark (dotted), where the
    differences between agents are a few hundredths of a bit per byte."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spaces = list(dict.fromkeys(r.space for r in runs))
    fig, axes = plt.subplots(2, len(spaces), figsize=(6 * len(spaces), 8), squeeze=False)
    x = np.arange(1, trials + 1)
    for col, space in enumerate(spaces):
        curves = {}
        for a in agents:
            rs = [r for r in runs if r.space == space and r.agent == a]
            if rs:
                curves[a] = np.array([r.best_so_far(trials) for r in rs])
        for row, ax in enumerate(axes[:, col]):
            for a, c in curves.items():
                mean, sd = c.mean(axis=0), (c.std(axis=0, ddof=1) if len(c) > 1 else np.zeros(trials))
                ax.plot(x, mean, label=a, lw=2 if a in ("hybrid", "tpe") else 1.3)
                ax.fill_between(x, mean - sd, mean + sd, alpha=0.12)
            if row == 1 and curves:
                low = min(c.mean(axis=0)[-1] for c in curves.values())
                third = max(1, trials // 3)
                high = max(c.mean(axis=0)[third - 1] for c in curves.values())
                pad = 0.15 * max(high - low, 1e-3)
                ax.set_ylim(low - pad, high + pad)
                ax.axvline(third, color="grey", ls=":", lw=1)
                if "random" in curves:
                    ax.axhline(curves["random"].mean(axis=0)[-1], color="grey", ls="--", lw=1, label="random's final best")
                ax.set_title(f"{space}: close-up (dotted: {third} trials = ⅓)")
            else:
                ax.set_title(f"{space} ({len({r.repeat for r in runs if r.space == space})} repeats)")
            ax.set_xlabel("trials")
            ax.set_ylabel("best val_bpb so far (mean ± sd)")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------- main
def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spaces", default=",".join(SPACES), help="comma-separated search spaces (shipped names or paths)")
    ap.add_argument("--agents", default=",".join(AGENTS), help=f"comma-separated, from {', '.join(AGENTS)}")
    ap.add_argument("--trials", type=int, default=30, help="trials per search (the baseline is not counted)")
    ap.add_argument("--repeats", type=int, default=3, help="repeats, each with its own training and agent seeds")
    ap.add_argument("--steps", type=int, default=30, help="optimizer steps per trial")
    ap.add_argument("--eval-bytes", type=int, default=4096, help="validation bytes scoring each trial")
    ap.add_argument("--seed", type=int, default=0, help="first repeat's seed (training seed 1337 + repeat)")
    ap.add_argument("--out", type=Path, default=OUT, help="folder for search_quality.{txt,json,png}")
    ap.add_argument("--override", action="append", default=[], metavar="[SPACE:]KEY=VALUE",
                    help="a Hydra override of the base config (of SPACE's only, with the prefix); repeatable")
    ap.add_argument("--quick", action="store_true", help="smoke test: 4 trials, 1 repeat, 5 steps")
    ap.add_argument("--from-json", nargs="+", metavar="JSON[:AGENTS]",
                    help="summarise and plot the runs saved by earlier invocations (e.g. one per space) instead of "
                         "training; JSON:random,tpe takes only those agents' runs from that file")
    args = ap.parse_args(argv)
    if args.from_json:
        return _from_json(args)
    if args.quick:
        args.trials, args.repeats, args.steps, args.eval_bytes = min(args.trials, 4), 1, 5, 2048
    agents = [a.strip() for a in args.agents.split(",") if a.strip()]
    unknown = [a for a in agents if a not in AGENTS]
    if unknown:
        ap.error(f"unknown agent(s) {unknown}; choose from {', '.join(AGENTS)}")
    spaces = [s.strip() for s in args.spaces.split(",") if s.strip()]
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if {"bayes", "hybrid"} & set(agents):
        import ax  # noqa: F401 - Ax attaches an INFO stream handler to its "ax" logger on import
    for name in ("ax", "autoresearch"):
        logging.getLogger(name).setLevel(logging.ERROR)
        for handler in logging.getLogger(name).handlers:
            handler.setLevel(logging.ERROR)

    import torch

    torch.set_num_threads(1)
    started, cpu_started = time.perf_counter(), time.process_time()
    runs: list[SearchRun] = []
    trained = cached = 0
    for space in spaces:
        for repeat in range(args.repeats):
            seed = args.seed + repeat
            extra = tuple(_overrides_for(space, args.override))
            objective = Objective(space, steps=args.steps, seed=1337 + seed, eval_bytes=args.eval_bytes, extra=extra)
            for kind in agents:
                run = search(kind, objective, trials=args.trials, seed=seed, repeat=seed,
                             on_trial=lambda unfinished: _save(args, [*runs, unfinished], partial=True))
                runs.append(run)
                _save(args, runs, partial=True)  # a long run interrupted keeps its finished searches
                best = run.best_so_far(args.trials)[-1]
                print(f"[{space} seed {seed} {kind:>8}] best {best:.4f} (baseline {run.baseline:.4f}) "
                      f"{len(run.values)} trials, {run.refusals} refusals, {run.seconds:.0f} s; "
                      f"trained so far {objective.trained}", flush=True)
            trained += objective.trained
            cached += sum(len(r.values) + 1 for r in runs if r.space == space and r.repeat == seed) - objective.trained
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    table, numbers = summarise(runs, agents, args.trials)
    shown = f"; base overrides {' '.join(args.override)}" if args.override else ""
    header = (f"# search_quality: {', '.join(spaces)}{shown}; agents {', '.join(agents)}; {args.trials} trials × "
              f"{args.repeats} repeats; {args.steps} steps per trial (tiny model "
              f"{'x'.join(str(v) for v in TINY.values())}), seeds {args.seed}..{args.seed + args.repeats - 1}\n"
              f"# {trained} configurations trained, {cached} trial results taken from the fingerprint cache "
              f"(same config and seed already trained in this run); {wall / 60:.1f} min wall, {cpu / 60:.1f} CPU-min "
              f"of this process")
    _save(args, runs, partial=False, header=header)
    _write(args.out, header, runs, agents, args.trials)
    return 0


def _save(args: argparse.Namespace, runs: list[SearchRun], *, partial: bool, header: str = "") -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "search_quality.json").write_text(json.dumps({
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "partial": partial, "header": header,
        "runs": [dataclasses.asdict(r) for r in runs],
    }, indent=1, default=str))


def _write(out: Path, header: str, runs: list[SearchRun], agents: list[str], trials: int) -> None:
    table, _ = summarise(runs, agents, trials)
    text = header + "\n" + table + "\n"
    print(text)
    out.mkdir(parents=True, exist_ok=True)
    (out / "search_quality.txt").write_text(text)
    plot(runs, agents, trials, out / "search_quality.png")
    print(f"wrote {out / 'search_quality.txt'} and .png")


def _from_json(args: argparse.Namespace) -> int:
    """Merge the runs saved by several invocations (e.g. one per space, seed and agent) into one summary."""
    runs: list[SearchRun] = []
    saved_args: list[dict[str, Any]] = []
    unfinished = 0
    for spec in args.from_json:
        path, agents = _json_spec(spec)
        saved = json.loads(path.read_text())
        runs += [SearchRun(**r) for r in saved["runs"] if agents is None or r["agent"] in agents]
        saved_args.append(saved["args"])
        unfinished += bool(saved.get("partial"))
    _check_merge(runs)
    agents = [a for a in AGENTS if any(r.agent == a for r in runs)]
    trials = max(int(a["trials"]) for a in saved_args)
    settings = sorted({f"{a['steps']} steps, {a['eval_bytes']} eval bytes" for a in saved_args})
    overrides = sorted({o for a in saved_args for o in a.get("override", [])})
    header = [f"# search_quality, merged from {len(args.from_json)} saved files ({' '.join(args.from_json)}): {', '.join(dict.fromkeys(r.space for r in runs))}; "
              f"agents {', '.join(agents)}; {trials} trials per search; {'; '.join(settings)}; tiny model "
              f"{'x'.join(str(v) for v in TINY.values())}; seeds {sorted({r.repeat for r in runs})}"
              + (f"; base overrides {' '.join(overrides)}" if overrides else ""),
              "# each invocation trains a configuration once per seed (results cached by config fingerprint)"]
    reached = min(len(r.values) for r in runs)
    if reached < trials:  # summarised while some searches were still running: compare what all reached
        header.append(f"# TRUNCATED at {reached} trials: {unfinished} of the {len(args.from_json)} invocations were "
                      f"still running, and the slowest search had run only {reached} of its {trials} trials")
        trials = reached
    _write(args.out, "\n".join(header), runs, agents, trials)
    return 0


def _json_spec(spec: str) -> tuple[Path, Optional[set[str]]]:
    """``DIR/search_quality.json:random,tpe`` → the path and the agents to take from it (None: all)."""
    head, sep, tail = spec.rpartition(":")
    if sep and tail and all(a in AGENTS for a in tail.split(",")):
        return Path(head), set(tail.split(","))
    return Path(spec), None


def _check_merge(runs: list[SearchRun]) -> None:
    """Refuse a merge that counts a search twice, or pairs repeats whose objectives differ.

    Runs from different invocations are paired by (space, repeat); that is only fair when each
    invocation trained the same objective, which the baseline (trained in each) shows.
    """
    seen: dict[tuple[str, str, int], int] = {}
    baselines: dict[tuple[str, int], float] = {}
    for r in runs:
        key = (r.space, r.agent, r.repeat)
        if key in seen:
            raise SystemExit(f"the merged files hold {r.agent} on {r.space}, repeat {r.repeat}, twice; "
                             f"select agents per file with JSON:AGENTS")
        seen[key] = 1
        other = baselines.setdefault((r.space, r.repeat), r.baseline)
        if abs(other - r.baseline) > 1e-9:
            raise SystemExit(f"{r.space} repeat {r.repeat}: baselines {other} and {r.baseline} differ between the "
                             f"merged files, so their searches did not share an objective")


if __name__ == "__main__":
    sys.exit(main())
