"""Learning curves as plain data: ``[(progress, val_bpb), ...]`` with progress in [0, 1].

The critic never touches a trainer: a curve is what a run directory's ``curve.jsonl`` evaluation
rows say (``progress`` and ``val_bpb``), sorted by progress. This module reads them, interpolates
them, and — for tests and offline benchmarks — draws synthetic ones with a known ground truth.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

Curve = list[tuple[float, float]]


def clean_curve(points: Iterable[Sequence[float]]) -> Curve:
    """Sorted by progress, finite values only, one value per progress (the last one wins)."""
    by_progress: dict[float, float] = {}
    for p, v in points:
        p, v = float(p), float(v)
        if math.isfinite(p) and math.isfinite(v):
            by_progress[min(max(p, 0.0), 1.0)] = v
    return sorted(by_progress.items())


def read_curve(path: Path) -> Curve:
    """Evaluation rows (those carrying ``val_bpb``) of a ``curve.jsonl``; a torn last line is skipped.

    The campaign reads this file while the trial is still writing it, so a half-written final
    line is expected and ignored rather than an error.
    """
    points = []
    for line in Path(path).read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and row.get("val_bpb") is not None and row.get("progress") is not None:
            points.append((row["progress"], row["val_bpb"]))
    return clean_curve(points)


def value_at(curve: Curve, progress: float) -> float:
    """Linear interpolation of val_bpb at ``progress``; nan outside the curve's observed range."""
    if not curve:
        return math.nan
    ps = np.array([p for p, _ in curve])
    vs = np.array([v for _, v in curve])
    if progress < ps[0] - 1e-12 or progress > ps[-1] + 1e-12:
        return math.nan
    return float(np.interp(progress, ps, vs))


def final_value(curve: Curve) -> float:
    """val_bpb at the curve's last point (the run's final evaluation when it completed)."""
    return float(curve[-1][1]) if curve else math.nan


def evaluation_noise(curves: Iterable[Curve], *, from_progress: float = 0.5) -> float:
    """Robust estimate of the noise σ of one evaluation, pooled over curves; nan without evidence.

    Each interior point at ``from_progress`` or later is compared with the straight line through
    its two neighbours; late in a curve the curvature is small, so what is left is noise. For a
    point at weight ``w`` between its neighbours the residual has variance σ²(1 + w² + (1 - w)²),
    and σ is the median absolute scaled residual / 0.6745 (a few outlying evaluations do not move it).
    The scale of val_bpb differs between search spaces, models and budgets; this is what a
    stopper measures of it from a campaign's own finished curves.
    """
    scaled = []
    for curve in curves:
        for (p0, v0), (p1, v1), (p2, v2) in zip(curve, curve[1:], curve[2:]):
            if p1 < from_progress or p2 <= p0:
                continue
            w = (p2 - p1) / (p2 - p0)  # weight of the left neighbour in the straight line
            resid = v1 - (w * v0 + (1 - w) * v2)
            scaled.append(abs(resid) / math.sqrt(1 + w * w + (1 - w) ** 2))
    return float(np.median(scaled) / 0.6745) if scaled else math.nan


def synthetic_curves(
    n: int,
    *,
    seed: int = 0,
    points: int = 10,
    noise: float = 0.01,
    spread: float = 0.15,
    floor: float = 1.6,
) -> list[Curve]:
    """``n`` learning curves of a family of configurations with a known final value each.

    Each configuration has a final val_bpb ``floor + spread·|z|`` and approaches it as a power
    law of progress, ``final + a·(p^-c - 1)``, with its own amplitude ``a`` and rate ``c``, so
    curves cross (a slow starter can end best), plus independent evaluation noise of std
    ``noise`` at every point. Evaluations are evenly spaced, like the trainer's ``eval_points``.
    The shape is a stand-in for real curves; it lets tests and the replay benchmark run
    without a trainer, and the benchmark prefers a recorded curve bank when one exists.
    """
    rng = np.random.default_rng(seed)
    progress = np.linspace(1.0 / points, 1.0, points)
    curves = []
    for _ in range(n):
        final = floor + spread * abs(rng.normal())
        amp = rng.uniform(0.15, 0.45)
        rate = rng.uniform(0.4, 1.0)
        vals = final + amp * (progress**-rate - 1.0) + rng.normal(0.0, noise, size=points)
        curves.append([(float(p), float(v)) for p, v in zip(progress, vals)])
    return curves
