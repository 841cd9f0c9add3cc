"""Curve-bank benchmark: how much compute does each early-stopping strategy save, at what regret?

    python bench/curve_bank.py --record [--seed 1] # train 36 configs + 3 baseline repeats once
    python bench/curve_bank.py                     # replay none / percentile / curve / halving on both banks
    python bench/curve_bank.py --synthetic 40      # replay on synthetic curves (no bank needed)
    python bench/curve_bank.py --add-noise 10 --bank bench/curve_bank.json  # more baseline repeats
    python bench/curve_bank.py --record --resume ... # the same record command: carry on where it stopped

``--record`` samples configurations of a shipped search space (default ``quickstart``) with
``--seed``, trains each to its full budget through ``autoresearch.experiment.run_experiment``
and stores their learning curves (``progress``, ``val_bpb`` rows of ``curve.jsonl``) in
``bench/curve_bank.json`` (seed 0) or ``bench/curve_bank_seed<N>.json``, with each one's final
val_bpb, and the final val_bpb of baseline repeats (seeds only) for the noise floor. The budget
defaults to a step count, so the curves do not depend on how busy the machine is. ``--add-noise N`` trains N more
baseline repeats for a bank's noise floor, after checking that the recorded baseline still
reproduces.

Replay (the default) replays every strategy over each bank in several random arrival orders,
offline, and prints compute used/saved, regret (best final val_bpb found minus the best with no
stopping) and whether the regret stays within the bank's noise floor σ. Regret is on the final
scores where the bank stores them, as σ is; banks recorded before 2026-12-02 have only their
curves, whose last evaluation (a smaller slice of the validation split) stands in. Goal: >= 60 %
of trial compute saved with regret within the noise floor.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from autoresearch.config import EarlyStoppingConfig, compose, flatten, to_dict, to_experiment_config  # noqa: E402
from autoresearch.critic import (  # noqa: E402
    CurveBank,
    StopperContext,
    earlier_campaign,
    evaluation_noise,
    read_curve,
    replay_strategies,
    synthetic_curves,
)

# Two banks of the same space and settings, configurations sampled with seeds 0 and 1: whether
# early stopping can reach its goal depends on the bank (is the best configuration a late bloomer?),
# so one bank is too few to judge a strategy by.
BENCH = Path(__file__).resolve().parent
BANKS = [BENCH / name for name in ("curve_bank.json", "curve_bank_seed1.json")]
log = logging.getLogger("curve_bank")


def _train(runs: list[tuple[str, list[str]]], base_overrides: list[str]):
    """Train each ``(name, extra overrides)`` to its full budget; yield name, extra, result, curve."""
    from autoresearch.experiment import CURVE_FILE, run_experiment

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="curve_bank_") as tmp:
        for i, (name, extra) in enumerate(runs):
            cfg = to_experiment_config(compose(base_overrides + extra))
            run_dir = Path(tmp) / name
            result = run_experiment(cfg, run_dir, overrides=base_overrides + extra, bundle=False)
            curve = read_curve(run_dir / CURVE_FILE)
            print(f"[{i + 1}/{len(runs)}] {name} {result.status} val_bpb={result.val_bpb:.4f} "
                  f"points={len(curve)} ({time.perf_counter() - started:.0f} s)", flush=True)
            yield name, extra, result, curve


def record(args: argparse.Namespace) -> None:
    from autoresearch.search import Hypothesis, SearchSpace

    budget = {"kind": args.budget_kind, "value": args.budget_value}
    base_overrides = [
        f"+campaign={args.campaign}",
        *([f"campaign.search_space={args.space}"] if args.space else []),
        "logger=none",
        f"trainer.budget.kind={args.budget_kind}",
        f"trainer.budget.value={args.budget_value}",
        f"trainer.eval_points={args.eval_points}",
        "trainer.device=cpu",
        *args.override,
    ]
    base_cfg = to_experiment_config(compose(base_overrides))
    space = SearchSpace.load(base_cfg.campaign.search_space)
    flat = flatten(to_dict(base_cfg))
    # The baseline's own values of the searched keys, pinned: a later change of a default must not
    # change what "baseline" means for repeats added to this bank (--add-noise).
    pinned = Hypothesis(overrides={k: flat[k] for k in space.parameters}).override_strings()
    rng = random.Random(args.seed)
    # Consecutive seeds from the campaign's first: a small campaign lists fewer seeds than a noise floor needs.
    first_seed = base_cfg.campaign.seeds[0] if base_cfg.campaign.seeds else 1337
    noise_seeds = list(range(first_seed, first_seed + args.noise_repeats))
    runs: list[tuple[str, list[str]]] = [(f"baseline_seed{s}", [f"seed={s}", *pinned]) for s in noise_seeds]
    seen: set[tuple] = set()
    while len(runs) < len(noise_seeds) + args.configs:
        point = space.sample(rng, flat)
        key = tuple(sorted(point.items()))
        if key in seen:
            continue
        seen.add(key)
        runs.append((f"config{len(runs) - len(noise_seeds):03d}", Hypothesis(overrides=point).override_strings()))

    meta = {"campaign": args.campaign, "search_space": space.name, "base_overrides": base_overrides,
            "budget": budget, "seed": args.seed, "baseline_overrides": pinned, "noise_seeds": []}
    bank = CurveBank(curves={}, noise=[], overrides={}, meta=meta)
    spent = 0.0
    if args.resume and Path(args.bank).is_file():
        bank, runs = _resume(CurveBank.load(args.bank), runs, meta, args.bank)
        spent = float(bank.meta.get("record_seconds", 0.0))
    started = time.perf_counter()
    for name, extra, result, curve in _train(runs, base_overrides):
        if name.startswith("check_"):
            _check_reproduces(bank, result.val_bpb, args.bank)
            continue
        if result.status != "completed" or len(curve) < 2:
            continue  # diverged or crashed configs have no full curve to replay
        if name.startswith("baseline"):
            bank.noise.append(result.val_bpb)
            bank.meta["noise_seeds"].append(_seed_of(extra))
        else:
            bank.curves[name] = curve
            bank.overrides[name] = extra
            bank.finals[name] = result.val_bpb
        # Saved after every run: a recording cut short (a shared machine, a deadline) keeps what it
        # trained, and --resume carries on from there.
        bank.meta["record_seconds"] = round(spent + time.perf_counter() - started, 1)
        bank.save(args.bank)
    bank.save(args.bank)
    print(f"wrote {args.bank}: {len(bank.curves)} curves, {len(bank.noise)} baseline repeats")


def _resume(bank: CurveBank, runs: list[tuple[str, list[str]]], meta: dict,
            path: Path) -> tuple[CurveBank, list[tuple[str, list[str]]]]:
    """What is left of ``runs`` after the part of them a cut-short recording already stored.

    A bank is only extended with runs of the same recording: same campaign, overrides, sampling
    seed and baseline, and the same configurations sampled so far (checked name by name), so a
    later change of a search space or default cannot slip into a half-recorded bank. Runs are
    trained in order, so everything up to the last stored one was tried (a diverged config left no
    curve and is not retried). The first baseline repeat is trained again first and must reproduce
    its stored val_bpb, as for ``--add-noise``.
    """
    for key in ("campaign", "base_overrides", "seed", "baseline_overrides"):
        if bank.meta.get(key) != meta[key]:
            sys.exit(f"{path}: recorded with {key}={bank.meta.get(key)!r}, this command gives {meta[key]!r}; "
                     "resume with the bank's own record command")
    planned = dict(runs)
    for name, extra in bank.overrides.items():
        if planned.get(name) != extra:
            sys.exit(f"{path}: {name} was recorded as {extra}, sampling now gives {planned.get(name)}; "
                     "the search space changed since recording. Record a new bank instead.")
    names = [name for name, _ in runs]
    stored = set(bank.curves) | {f"baseline_seed{s}" for s in bank.meta.get("noise_seeds", [])}
    done = max((names.index(n) for n in stored if n in planned), default=-1)
    left = runs[done + 1:]
    log.warning("%s: %d curves and %d baseline repeats stored, %d runs left", path, len(bank.curves),
                len(bank.noise), len(left))
    if left and bank.noise:
        first = bank.meta["noise_seeds"][0]
        left.insert(0, (f"check_seed{first}", [f"seed={first}", *bank.meta["baseline_overrides"]]))
    return bank, left


def _check_reproduces(bank: CurveBank, val_bpb: float, path: Path) -> None:
    """Stop unless the first baseline repeat, trained again now, gives its recorded val_bpb."""
    if not math.isclose(val_bpb, bank.noise[0], rel_tol=0, abs_tol=1e-9):
        sys.exit(f"{path}: baseline seed {bank.meta['noise_seeds'][0]} gives val_bpb {val_bpb:.6f} now, "
                 f"{bank.noise[0]:.6f} when recorded; the code or a default changed since. "
                 "Record a new bank rather than mix two.")


def _seed_of(overrides: list[str]) -> int:
    return int(next(o for o in overrides if o.startswith("seed=")).split("=", 1)[1])


def add_noise(args: argparse.Namespace) -> None:
    """Append baseline repeats with fresh seeds to a recorded bank; its curves stay as they are.

    The noise floor σ is a standard deviation; from 3 repeats its 95 % interval spans a factor of
    about 12. Repeats added later must measure the same thing as the recorded ones, so the first
    recorded repeat is trained again first and must reproduce its stored val_bpb (training on CPU
    with one thread is deterministic); if the code or a default has changed since recording, this
    stops with a clear message instead of mixing two baselines.
    """
    bank = CurveBank.load(args.bank)
    meta = bank.meta
    missing = [k for k in ("baseline_overrides", "noise_seeds") if k not in meta]
    if missing or len(meta["noise_seeds"]) != len(bank.noise):
        sys.exit(f"{args.bank}: meta needs 'baseline_overrides' and 'noise_seeds' (one per noise value) "
                 f"to add baseline repeats; missing or inconsistent: {missing or 'noise_seeds'}")
    base_overrides, pinned, used = meta["base_overrides"], meta["baseline_overrides"], meta["noise_seeds"]
    first = max(used) + 1 if used else to_experiment_config(compose(base_overrides)).campaign.seeds[0]
    runs = [(f"baseline_seed{s}", [f"seed={s}", *pinned]) for s in range(first, first + args.add_noise)]
    if used:  # nothing to check against in a bank recorded without repeats
        runs.insert(0, (f"check_seed{used[0]}", [f"seed={used[0]}", *pinned]))
    for name, extra, result, _ in _train(runs, base_overrides):
        if name.startswith("check_"):
            if not math.isclose(result.val_bpb, bank.noise[0], rel_tol=0, abs_tol=1e-9):
                sys.exit(f"{args.bank}: baseline seed {used[0]} gives val_bpb {result.val_bpb:.6f} now, "
                         f"{bank.noise[0]:.6f} when recorded; the code or a default changed since. "
                         "Re-record the bank (--record) rather than mix two baselines.")
            continue
        if result.status == "completed":
            bank.noise.append(result.val_bpb)
            used.append(_seed_of(extra))
    bank.save(args.bank)
    print(f"wrote {args.bank}: {len(bank.noise)} baseline repeats, noise σ {bank.noise_std:.4f}")


def replay(args: argparse.Namespace) -> None:
    import torch

    # One intra-op thread: the GP's small linear algebra gets slower, not faster, with more
    # threads on a shared CPU. Decision times below are measured under this setting.
    torch.set_num_threads(1)
    import ax  # noqa: F401 - Ax attaches an INFO stream handler to its "ax" logger on import

    for handler in logging.getLogger("ax").handlers:
        handler.setLevel(logging.WARNING)
    cfg = EarlyStoppingConfig(
        min_progress=args.min_progress, min_curves=args.min_curves, delta=args.delta,
        margin=args.margin, noise_margin=args.noise_margin, slope_noise=args.slope_noise,
        delta_behind=args.delta_behind, percentile=args.percentile, eta=args.eta,
    )
    print(f"{args.shuffles} arrival orders (seed {args.seed}); min_progress={cfg.min_progress} "
          f"min_curves={cfg.min_curves} delta={cfg.delta} noise_margin={cfg.noise_margin} "
          f"slope_noise={cfg.slope_noise} delta_behind={cfg.delta_behind} "
          f"percentile={cfg.percentile} eta={cfg.eta}; stoppers told "
          + (f"the noise floor of the first {args.floor_repeats} baseline repeats" if args.floor_repeats
             else "no noise floor (measured from finished curves)")
          + (f", prior curves of {', '.join(p.name for p in args.prior)}" if args.prior else ""))
    if args.prior_as_campaign:  # what an earlier campaign left in the store, not the whole bank
        prior = tuple(c for p in args.prior for c in earlier_campaign(CurveBank.load(p), cfg, seed=args.seed))
        print(f"prior: {len(prior)} curves finished when {', '.join(p.name for p in args.prior)} ran as campaigns "
              f"through the curve stopper")
    else:
        prior = tuple(c for p in args.prior for c in CurveBank.load(p).curves.values())
    if args.synthetic:
        curves = synthetic_curves(args.synthetic, seed=args.seed, points=args.eval_points, noise=0.01)
        _replay_one(f"{args.synthetic} synthetic curves (noise σ 0.01)", curves, 0.01, cfg, args, StopperContext())
        return
    for path in args.bank:
        if not path.is_file():
            sys.exit(f"{path}: no curve bank; record one with --record, or replay --synthetic N")
    for path in args.bank:
        bank = CurveBank.load(path)
        source = f"{path.name}: {len(bank.curves)} recorded curves, {len(bank.noise)} baseline repeats"
        floor = bank.noise[: args.floor_repeats]
        context = StopperContext(noise_std=float(np.std(floor, ddof=1)) if len(floor) >= 2 else None,
                                 prior_curves=prior if path not in args.prior else ())
        finals = bank.complete_finals
        source += ("; regret on final scores" if finals
                   else "; regret on the curves' last evaluations (no final scores stored)")
        _replay_one(source, list(bank.curves.values()), bank.noise_std, cfg, args, context,
                    [finals[k] for k in bank.curves] if finals else None)


def _replay_one(source: str, curves: list, noise_std: float, cfg: EarlyStoppingConfig, args: argparse.Namespace,
                context: StopperContext, finals: list[float] | None = None) -> None:
    started = time.perf_counter()
    rows = replay_strategies(curves, cfg, strategies=args.strategies, shuffles=args.shuffles,
                             seed=args.seed, noise_std=noise_std, context=context, finals=finals)
    source += f"; evaluation noise of its curves {evaluation_noise(curves):.4f}"
    header = f"{'strategy':<11}{'used %':>8}{'saved %':>9}{'regret':>9}{'worst':>9}{'noise σ':>9}" \
             f"{'≤ noise':>9}{'stopped':>9}{'ms/call':>9}{'max ms':>9}"
    print(f"\n{source}\n{header}\n{'-' * len(header)}")
    for r in rows:
        print(f"{r.strategy:<11}{100 * r.compute_used:>8.1f}{100 * r.compute_saved:>9.1f}{r.regret_mean:>9.4f}"
              f"{r.regret_max:>9.4f}{r.noise_std:>9.4f}{'yes' if r.within_noise else 'no':>9}"
              f"{r.stopped_mean:>9.1f}{1000 * r.decision_seconds_mean:>9.1f}{1000 * r.decision_seconds_max:>9.0f}")
    print(f"replayed in {time.perf_counter() - started:.1f} s")
    if math.isfinite(noise_std):
        goal = [r.strategy for r in rows if r.compute_saved >= 0.6 and r.within_noise]
        print(f"goal (>= 60 % saved, mean regret <= noise σ): {', '.join(goal) or 'not met by any strategy'}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--record", action="store_true", help="train configurations and store their curves")
    ap.add_argument("--bank", type=Path, nargs="+", default=None,
                    help="bank file(s): replay reads all (default: the shipped banks); --record and "
                         "--add-noise take one (--record's default: the shipped bank of its --seed)")
    ap.add_argument("--synthetic", type=int, default=0, help="replay N synthetic curves instead of the bank")
    ap.add_argument("--seed", type=int, default=0)
    # record
    ap.add_argument("--campaign", default="quickstart", help="shipped campaign: model, budget and search space")
    ap.add_argument("--space", default=None, help="search space to sample instead of the campaign's own")
    ap.add_argument("--configs", type=int, default=36)
    ap.add_argument("--noise-repeats", type=int, default=3)
    ap.add_argument("--budget-kind", default="steps")
    ap.add_argument("--budget-value", type=float, default=200)
    ap.add_argument("--eval-points", type=int, default=10)
    ap.add_argument("--override", action="append", default=[], help="extra Hydra override for every run")
    ap.add_argument("--resume", action="store_true",
                    help="--record: extend the bank at --bank (a recording cut short, or more --configs) "
                         "instead of starting it again")
    ap.add_argument("--add-noise", type=int, default=0, metavar="N",
                    help="append N baseline repeats (fresh seeds) to the recorded bank's noise floor")
    # replay
    ap.add_argument("--strategies", nargs="+", default=["none", "percentile", "curve", "halving"])
    ap.add_argument("--shuffles", type=int, default=5)
    ap.add_argument("--min-progress", type=float, default=EarlyStoppingConfig.min_progress)
    ap.add_argument("--min-curves", type=int, default=EarlyStoppingConfig.min_curves)
    ap.add_argument("--delta", type=float, default=EarlyStoppingConfig.delta)
    ap.add_argument("--margin", type=float, default=EarlyStoppingConfig.margin)
    ap.add_argument("--noise-margin", type=float, default=EarlyStoppingConfig.noise_margin)
    ap.add_argument("--slope-noise", type=float, default=EarlyStoppingConfig.slope_noise)
    ap.add_argument("--delta-behind", type=float, default=EarlyStoppingConfig.delta_behind,
                    help="curve: delta for a trial behind the finished curves' median (0: off)")
    ap.add_argument("--floor-repeats", type=int, default=0, metavar="N",
                    help="tell the stoppers the noise floor of the bank's first N baseline repeats "
                         "(what a campaign with N noise seeds knows); 0: they measure noise from the curves")
    ap.add_argument("--prior", type=Path, nargs="*", default=[],
                    help="banks whose curves the stoppers get as earlier campaigns' curves on the same space")
    ap.add_argument("--prior-as-campaign", action="store_true",
                    help="give only the --prior curves that finish when each prior bank runs once as a campaign "
                         "through the curve stopper (what the KnowledgeStore would hold)")
    ap.add_argument("--percentile", type=float, default=EarlyStoppingConfig.percentile)
    ap.add_argument("--eta", type=float, default=EarlyStoppingConfig.eta)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.record or args.add_noise:
        if args.bank is not None and len(args.bank) != 1:
            ap.error("--record and --add-noise write one bank: give one --bank")
        if args.bank is None and args.add_noise:
            ap.error("--add-noise: name the bank to add repeats to with --bank")
        args.bank = args.bank[0] if args.bank else BANKS[0].with_name(
            "curve_bank.json" if args.seed == 0 else f"curve_bank_seed{args.seed}.json")
    else:
        args.bank = args.bank or sorted(BENCH.glob("curve_bank*.json"))
    if args.record:
        record(args)
    elif args.add_noise:
        add_noise(args)
    else:
        replay(args)


if __name__ == "__main__":
    main()
