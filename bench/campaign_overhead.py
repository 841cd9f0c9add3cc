"""Campaign overhead: the share of a campaign's wall clock not spent training or evaluating.

    overhead = (workers × campaign wall time − Σ over trials of (training + evaluation seconds))
               / (workers × wall time)

i.e. the share of the worker slots' time not spent training or evaluating (with one worker, the
share of the wall clock). Training includes the untimed warm-up steps a seconds budget keeps off
its clock, each at a timed step's pace; what they take beyond that (first-call costs) is overhead.
Evaluation includes the hidden test split's scoring of a validated discovery's runs
(``test_eval_seconds`` in their metrics.json; that process's start and weight loading are
overhead) where it held the only slot (one worker, a wall-clock budget); elsewhere it ran beside
the training trials, on top of the slots, and is shown apart. Everything else is
overhead: process start-up, Ax and the LLM proposing (unless hidden behind a training trial),
the gate, the store, early-stopping decisions, the report. The campaign is the real one
(``python -m autoresearch +campaign=...``), timed from the outside. Goal: ≤ 2 % for 60-second
trials on CPU.

    python bench/campaign_overhead.py                        # quickstart space, 60 s trials, 6 hypotheses
    python bench/campaign_overhead.py --seconds 20 --trials 3  # a quicker look
    python bench/campaign_overhead.py --seconds 20 --trials 3 trainer.threads=1  # trial speed, another setting
    python bench/campaign_overhead.py --seconds 20 --trials 4 --workers 2    # two local workers, a thread each

It also prints the trials' training tokens/s by kind: the baselines share one configuration, so
theirs compare thread settings (``trainer.threads``, an exported ``OMP_WAIT_POLICY``) as a
campaign really runs them.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autoresearch.experiment import METRICS_FILE, RunResult
from autoresearch.result import is_cancelled
from autoresearch.store import KnowledgeStore


def waiting_for_results(spans: list[tuple[float, float]], workers: int) -> float:
    """Slot-seconds a worker sat free because nothing could start until a running trial's result came.

    ``spans`` are the trials' (start, finish) times. Free slots between two consecutive events are
    *waiting* when a trial's finish still lay ahead before the next start (the verdict it needed:
    validation seeds after their screening run, ablations after the last validation seed), or when
    no trial starts any more (the last results in flight). The time from that finish to the next
    start (proposing, composing, scoring the test split) is the campaign's own overhead, as is a
    free slot with no finish ahead of the next start (start-up).
    """
    events = sorted({t for span in spans for t in span})
    starts = sorted(a for a, _ in spans)
    finishes = sorted(b for _, b in spans)
    waiting = 0.0
    for lo, hi in zip(events, events[1:]):
        free = workers - sum(a <= lo and b >= hi for a, b in spans)
        if free <= 0:
            continue
        later = [a for a in starts if a >= hi]
        trigger = max((f for f in finishes if f <= later[0]), default=None) if later else None
        if not later or (trigger is not None and trigger >= hi):
            waiting += free * (hi - lo)
    return waiting


def _test_eval_seconds(run_dir: Path) -> float:
    """The test-split evaluation recorded in a run's metrics.json (0 if it was not scored)."""
    try:
        return RunResult.load(run_dir / METRICS_FILE).test_eval_seconds or 0.0
    except (OSError, ValueError):
        return 0.0


def _warmup_training(metrics: dict) -> float:
    """The training in a trial's untimed warm-up steps: each at most one timed step's mean time.

    A seconds budget keeps the first step(s) off its clock (``trainer.untimed_warmup_steps``), yet
    they train the model like any other step; what they take beyond a timed step (first-call costs:
    the optimizer's state, fresh memory) is not training and stays overhead.
    """
    steps, seconds = int(metrics.get("warmup_steps", 0) or 0), float(metrics.get("warmup_seconds", 0) or 0)
    timed = int(metrics.get("num_steps", 0) or 0) - steps
    if steps <= 0 or timed <= 0:
        return 0.0
    per_step = float(metrics.get("training_seconds", 0) or 0) / timed
    return min(seconds, steps * per_step)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--campaign", default="quickstart")
    ap.add_argument("--seconds", type=float, default=60.0, help="training budget of each trial")
    ap.add_argument("--trials", type=int, default=6, help="hypotheses (baselines and validations come on top)")
    ap.add_argument("--agent", default="hybrid")
    ap.add_argument("--workers", type=int, default=1, help="local workers (more than one: one thread each)")
    ap.add_argument("--keep", action="store_true", help="keep the campaign directory")
    ap.add_argument("extra", nargs="*", help="more Hydra overrides")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="overhead-"))
    overrides = [
        f"+campaign={args.campaign}", f"agent={args.agent}", f"trainer.budget.value={args.seconds}",
        "trainer.budget.kind=seconds", f"campaign.max_trials={args.trials}", f"campaign.root={root}",
        f"knowledge.db={root / 'knowledge.sqlite'}", "campaign.max_wall_s=86400", *args.extra,
    ]
    if args.workers > 1:
        overrides += [f"executor.workers={args.workers}", "executor.threads_per_worker=1"]
    print("python -m autoresearch " + " ".join(overrides), flush=True)
    start, start_epoch = time.perf_counter(), time.time()
    proc = subprocess.run([sys.executable, "-m", "autoresearch", *overrides], cwd=root,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        print(proc.stderr[-3000:])
        sys.exit(proc.returncode)
    store = KnowledgeStore(root / "knowledge.sqlite")
    campaign = store.campaigns()[-1]
    trials = store.trials(campaign.id)
    # Runs started early on an idle worker and cancelled when their job moved on: their training
    # served nothing, so their slot time counts as overhead, shown apart.
    cancelled = [t for t in trials if is_cancelled(t.status, t.error)]
    useful = [t for t in trials if t not in cancelled]
    train = sum(float(t.metrics.get("training_seconds", 0) or 0) for t in useful)
    warmup = sum(_warmup_training(t.metrics) for t in useful)
    train += warmup
    evals = sum(float(t.metrics.get("eval_seconds", 0) or 0) for t in useful)
    lost = sum(float(t.metrics.get("training_seconds", 0) or 0) + _warmup_training(t.metrics)
               + float(t.metrics.get("eval_seconds", 0) or 0) for t in cancelled)
    test_evals = sum(_test_eval_seconds(Path(t.run_dir)) for t in trials if t.run_dir)
    scoring_held_the_slot = args.workers == 1  # the bench's budget is in seconds (Judge._scoring_holds_the_slot)
    if scoring_held_the_slot:
        evals += test_evals
    inside = sum(float(t.metrics.get("total_seconds", 0) or 0) for t in trials)
    slots = args.workers * wall  # worker-seconds the campaign had
    overhead = slots - train - evals
    startup = min(t.started_at for t in trials) - start_epoch  # until the first trial process starts
    steady = wall - startup
    kinds = {}
    for t in trials:
        kinds[t.kind] = kinds.get(t.kind, 0) + 1
    print(f"trials: {len(trials)} ({', '.join(f'{k} {v}' for k, v in kinds.items())}), "
          f"early-stopped {sum(t.status == 'early_stopped' for t in trials)}, "
          f"started early and cancelled {len(cancelled)}")
    print(f"campaign wall time        {wall:9.1f} s")
    print(f"Σ training                {train:9.1f} s  (of which untimed warm-up steps {warmup:.1f} s, "
          f"at a timed step's pace)")
    print(f"Σ evaluation              {evals:9.1f} s  " + (f"(of which the test split {test_evals:.1f} s)"
          if scoring_held_the_slot else f"(and the test split beside the training trials, {test_evals:.1f} s)"))
    print(f"Σ trial process, inside   {inside:9.1f} s  (training, evaluation, model build, data mmap, bundle)")
    print(f"overhead                  {overhead:9.1f} s = {100 * overhead / slots:.2f} % of "
          f"{'wall time' if args.workers == 1 else f'{args.workers} workers × wall time'} (goal ≤ 2 %; "
          f"{100 * (overhead + warmup) / slots:.2f} % if the warm-up steps' training counted as overhead)")
    if args.workers > 1:
        waited = waiting_for_results([(t.started_at, t.finished_at) for t in trials], args.workers)
        print(f"  of which slots waiting  {waited:9.1f} s = {100 * waited / slots:.2f} %  (nothing could start before "
              f"a running trial's result: the search's own critical path)")
        print(f"  of which cancelled runs {lost:9.1f} s = {100 * lost / slots:.2f} %  (training of runs started early "
              f"on an idle worker that their job did not need after all)")
        own = overhead - waited - lost
        print(f"  the campaign's own      {own:9.1f} s = {100 * own / slots:.2f} %  "
              f"(start-up, hand-over, proposals, test split, report)")
    print(f"per trial                 {overhead / max(len(trials), 1):9.2f} s")
    print(f"start-up (first trial)    {startup:9.1f} s  (interpreter, imports, store, lock)")
    if args.workers == 1:
        print(f"steady state              {100 * (steady - train - evals) / steady:9.2f} % of the wall time after start-up")
    # Where each trial's share goes: inside its process (set-up, warm-up's first-call costs, checkpoint),
    # between its start and end as the campaign saw them (hand-over, exit), and before it started.
    ordered = sorted(trials, key=lambda t: t.started_at)
    inside_oh = [float(t.metrics.get("total_seconds", 0)) - float(t.metrics.get("training_seconds", 0))
                 - _warmup_training(t.metrics) - float(t.metrics.get("eval_seconds", 0)) for t in ordered]
    outside = [t.finished_at - t.started_at - float(t.metrics.get("total_seconds", 0)) for t in ordered]
    gaps = [b.started_at - a.finished_at for a, b in zip(ordered, ordered[1:])]
    # From the trial that ended last: with several slots, the last to start may end earlier.
    tail = (start_epoch + wall) - max(t.finished_at for t in trials)
    between = f", between trials {statistics.median(gaps or [0]):.2f} [{max(gaps or [0]):.2f}] s" \
        if args.workers == 1 else ""  # with several slots, trials overlap: no gap between consecutive ones
    print(f"per trial, median [max]   inside {statistics.median(inside_oh):.2f} [{max(inside_oh):.2f}] s, "
          f"hand-over and exit {statistics.median(outside):.2f} [{max(outside):.2f}] s{between}")
    print(f"end (report, TSV, HParams) {tail:8.1f} s")
    # Training speed inside the campaign's trials (baselines share one configuration, so theirs
    # compare across thread settings: OMP_WAIT_POLICY=..., trainer.threads=N).
    rates: dict[str, list[float]] = {}
    for t in trials:
        if float(t.metrics.get("tokens_per_second", 0) or 0) > 0:
            rates.setdefault(t.kind, []).append(float(t.metrics["tokens_per_second"]))
    print("training tokens/s, median [min-max] by kind: " + ", ".join(
        f"{k} {statistics.median(v):.0f} [{min(v):.0f}-{max(v):.0f}]" for k, v in rates.items()))
    if args.keep:
        print(f"campaign directory: {root}")


if __name__ == "__main__":
    main()
