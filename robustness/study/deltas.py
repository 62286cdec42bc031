"""Deltas between two sides of a study, with paired bootstrap intervals.

A side is one model's scores under one condition. ``paired_delta`` compares two sides on the
images both scored (matched by image id within each set): the delta is side a's protocol mean
(each fake set against each real set, averaged) minus side b's. Each bootstrap replicate
resamples the images of every set once, with replacement, and applies the *same* resample to
both sides, so what the two sides share (which images happen to be hard) cancels out of the
interval (``robustness.metrics.protocol_replicates``, the project's one bootstrap). Typical
uses: a fine-tuned model against its starting point under every condition (``model_deltas``),
or each condition against the baseline for one model (``condition_deltas``).

Example::

    deltas = model_deltas(results, "demo-ft", "demo", n=1000, seed=0)
    [(d.condition, round(d.delta, 3), round(d.low, 3), round(d.high, 3)) for d in deltas]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from robustness.metrics import (
    get_metric,
    percentile_interval,
    protocol_replicates,
    resample_counts,
)
from robustness.study.results import ModelScores, StudyResults

__all__ = ["Delta", "condition_deltas", "delta_frame", "model_deltas", "paired_delta"]


@dataclass(frozen=True)
class Delta:
    """Side a minus side b, with its paired bootstrap percentile interval."""

    label: str  # what is compared, e.g. the condition id
    a: float  # side a's protocol mean on the paired images
    b: float
    delta: float  # a - b
    low: float
    high: float
    level: float
    n: int  # bootstrap replicates
    images: int  # images paired across both sides (all sets)


def _paired(a: ModelScores, ca: str, b: ModelScores, cb: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Scores of the images both sides scored in set ``name``, in the same order."""
    ga, gb = a.groups.get((ca, name)), b.groups.get((cb, name))
    if ga is None or gb is None:
        missing = f"{a.model} under {ca}" if ga is None else f"{b.model} under {cb}"
        raise ValueError(f"no scores of set {name!r} for {missing}")
    common, ia, ib = np.intersect1d(ga.image_ids, gb.image_ids, assume_unique=True, return_indices=True)
    if common.size == 0:
        raise ValueError(
            f"set {name!r}: {a.model} under {ca} and {b.model} under {cb} share "
            f"no scored image, so they cannot be paired"
        )
    return ga.scores[ia].astype(np.float64), gb.scores[ib].astype(np.float64)


def paired_delta(
    a: ModelScores,
    condition_a: str,
    b: ModelScores,
    condition_b: str,
    *,
    real_sets: list[str],
    fake_sets: list[str],
    metric: str = "auc",
    n: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    label: str | None = None,
) -> Delta:
    """Side a minus side b on the images both scored, with a paired bootstrap interval."""
    get_metric(metric)
    pairs = {s: _paired(a, condition_a, b, condition_b, s) for s in fake_sets + real_sets}
    fa = [pairs[s][0] for s in fake_sets]
    fb = [pairs[s][1] for s in fake_sets]
    ra = [pairs[s][0] for s in real_sets]
    rb = [pairs[s][1] for s in real_sets]
    ones_f = [np.ones((1, x.size)) for x in fa]
    ones_r = [np.ones((1, x.size)) for x in ra]
    est_a = float(protocol_replicates(fa, ra, ones_f, ones_r, metric=metric)[0])
    est_b = float(protocol_replicates(fb, rb, ones_f, ones_r, metric=metric)[0])
    rng = np.random.default_rng(seed)
    wf = [resample_counts(rng, x.size, n) for x in fa]  # one resample per set, for both sides
    wr = [resample_counts(rng, x.size, n) for x in ra]
    reps = protocol_replicates(fa, ra, wf, wr, metric=metric) - protocol_replicates(fb, rb, wf, wr, metric=metric)
    low, high = percentile_interval(reps, level=level)
    images = int(sum(x.size for x in fa + ra))
    return Delta(label or condition_a, est_a, est_b, est_a - est_b, low, high, level, n, images)


def model_deltas(
    results: StudyResults,
    model_a: str,
    model_b: str,
    *,
    metric: str | None = None,
    n: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> list[Delta]:
    """Model a minus model b under each condition of the study."""
    metric = metric or results.study.metrics[0]
    return [
        paired_delta(
            results.scores[model_a],
            c,
            results.scores[model_b],
            c,
            real_sets=results.real_sets,
            fake_sets=results.fake_sets,
            metric=metric,
            n=n,
            seed=seed,
            level=level,
            label=c,
        )
        for c in results.study.condition_ids
    ]


def condition_deltas(
    results: StudyResults, model: str, *, metric: str | None = None, n: int = 1000, seed: int = 0, level: float = 0.95
) -> list[Delta]:
    """Each condition minus the study's baseline, for one model (same images both sides)."""
    metric = metric or results.study.metrics[0]
    ms, base = results.scores[model], results.study.baseline
    return [
        paired_delta(
            ms,
            c,
            ms,
            base,
            real_sets=results.real_sets,
            fake_sets=results.fake_sets,
            metric=metric,
            n=n,
            seed=seed,
            level=level,
            label=c,
        )
        for c in results.study.condition_ids
        if c != base
    ]


def delta_frame(
    a: ModelScores,
    b: ModelScores,
    *,
    conditions: list[str],
    real_sets: list[str],
    metric: str = "auc",
    n: int = 200,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[pd.DataFrame, list[str]]:
    """Model a minus model b under each condition, on the fake sets both scored there and the
    given real sets both scored (images paired by id), for a page or a notebook.

    Returns a frame (condition, a, b, delta, low, high, images) and, for conditions that
    cannot be compared, why.
    """
    rows, skipped = [], []
    for c in conditions:
        fakes = sorted(set(a.sets("fake", c)) & set(b.sets("fake", c)))
        reals = [r for r in real_sets if (c, r) in a.groups and (c, r) in b.groups]
        if not fakes or not reals:
            what = "fake" if not fakes else "selected real"
            skipped.append(f"{c}: {a.model} and {b.model} have no {what} set scored in common")
            continue
        try:
            d = paired_delta(
                a, c, b, c, real_sets=reals, fake_sets=fakes, metric=metric, n=n, seed=seed, level=level, label=c
            )
        except ValueError as exc:
            skipped.append(f"{c}: {exc}")
            continue
        rows.append(
            {
                "condition": c,
                a.model: d.a,
                b.model: d.b,
                "delta": d.delta,
                "low": d.low,
                "high": d.high,
                "images": d.images,
            }
        )
    cols = ["condition", a.model, b.model, "delta", "low", "high", "images"]
    return pd.DataFrame(rows, columns=cols), skipped
