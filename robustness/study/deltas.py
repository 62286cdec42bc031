"""Deltas between two sides of a study, with paired bootstrap intervals.

A side is one model's scores under one condition. ``paired_delta`` compares two sides on the
images both scored (matched by image id within each set): the delta is side a's protocol mean
(each fake set against each real set, averaged) minus side b's. Each bootstrap replicate
resamples the images of every set once, with replacement, and applies the *same* resample to
both sides, so what the two sides share (which images happen to be hard) cancels out of the
interval. Typical uses: a fine-tuned model against its starting point under every condition
(``model_deltas``), or each condition against the baseline for one model
(``condition_deltas``).

Example::

    deltas = model_deltas(results, "demo-ft", "demo", n=1000, seed=0)
    [(d.condition, round(d.delta, 3), round(d.low, 3), round(d.high, 3)) for d in deltas]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from robustness.metrics import get_metric
from robustness.study.results import ModelScores, StudyResults

__all__ = ["Delta", "condition_deltas", "delta_frame", "model_deltas", "paired_delta",
           "weighted_auc"]


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


def weighted_auc(fake: np.ndarray, real: np.ndarray, wf: np.ndarray, wr: np.ndarray
                 ) -> np.ndarray:
    """AUC (ties one half) of each replicate where image i counts ``w[k, i]`` times.

    Args:
        fake: (F,) scores; real: (R,) scores; wf: (n, F) and wr: (n, R) non-negative counts.
    Returns:
        (n,) AUCs; with all weights 1 this is ``robustness.metrics.auc``.
    """
    order = np.argsort(real, kind="mergesort")
    rs = real[order]
    cum = np.concatenate([np.zeros((wr.shape[0], 1)), np.cumsum(wr[:, order], axis=1)],
                         axis=1)  # (n, R + 1): real weight up to each sorted position
    lo = np.searchsorted(rs, fake, side="left")  # (F,) reals strictly below each fake
    hi = np.searchsorted(rs, fake, side="right")  # (F,) reals below or tied
    wins = cum[:, lo] + 0.5 * (cum[:, hi] - cum[:, lo])  # (n, F)
    return (wf * wins).sum(axis=1) / (wf.sum(axis=1) * wr.sum(axis=1))


def _counts(rng: np.random.Generator, size: int, n: int) -> np.ndarray:
    """(n, size): how often each item is drawn in n resamples of ``size`` with replacement."""
    flat = rng.integers(0, size, (n, size)) + np.arange(n)[:, None] * size
    return np.bincount(flat.ravel(), minlength=n * size).reshape(n, size).astype(np.float64)


def _paired(a: ModelScores, ca: str, b: ModelScores, cb: str, name: str
            ) -> tuple[np.ndarray, np.ndarray]:
    """Scores of the images both sides scored in set ``name``, in the same order."""
    ga, gb = a.groups.get((ca, name)), b.groups.get((cb, name))
    if ga is None or gb is None:
        missing = f"{a.model} under {ca}" if ga is None else f"{b.model} under {cb}"
        raise ValueError(f"no scores of set {name!r} for {missing}")
    common, ia, ib = np.intersect1d(ga.image_ids, gb.image_ids, assume_unique=True,
                                    return_indices=True)
    if common.size == 0:
        raise ValueError(f"set {name!r}: {a.model} under {ca} and {b.model} under {cb} share "
                         f"no scored image, so they cannot be paired")
    return ga.scores[ia].astype(np.float64), gb.scores[ib].astype(np.float64)


def _protocol(fakes: list[np.ndarray], reals: list[np.ndarray], wf: list[np.ndarray],
              wr: list[np.ndarray], metric: str) -> np.ndarray:
    """(n,) protocol means (fake x real cells, averaged) under resample counts."""
    if metric == "auc":
        cells = [weighted_auc(f, r, w1, w2) for f, w1 in zip(fakes, wf)
                 for r, w2 in zip(reals, wr)]
        return np.mean(cells, axis=0)
    fn = get_metric(metric).fn  # other metrics: expand the counts into index resamples
    n = wf[0].shape[0]
    out = np.zeros(n)
    for k in range(n):
        vals = []
        for f, w1 in zip(fakes, wf):
            fi = np.repeat(np.arange(f.size), w1[k].astype(int))
            for r, w2 in zip(reals, wr):
                ri = np.repeat(np.arange(r.size), w2[k].astype(int))
                y = np.r_[np.ones(fi.size, np.int8), np.zeros(ri.size, np.int8)]
                vals.append(fn(y, np.r_[f[fi], r[ri]]))
        out[k] = np.mean(vals)
    return out


def paired_delta(
    a: ModelScores, condition_a: str, b: ModelScores, condition_b: str, *,
    real_sets: list[str], fake_sets: list[str], metric: str = "auc", n: int = 1000,
    seed: int = 0, level: float = 0.95, label: str | None = None,
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
    est_a = float(_protocol(fa, ra, ones_f, ones_r, metric)[0])
    est_b = float(_protocol(fb, rb, ones_f, ones_r, metric)[0])
    rng = np.random.default_rng(seed)
    wf = [_counts(rng, x.size, n) for x in fa]  # one resample per set, shared by both sides
    wr = [_counts(rng, x.size, n) for x in ra]
    reps = _protocol(fa, ra, wf, wr, metric) - _protocol(fb, rb, wf, wr, metric)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(reps, [alpha, 1.0 - alpha])
    images = int(sum(x.size for x in fa + ra))
    return Delta(label or condition_a, est_a, est_b, est_a - est_b, float(low), float(high),
                 level, n, images)


def model_deltas(results: StudyResults, model_a: str, model_b: str, *, metric: str | None = None,
                 n: int = 1000, seed: int = 0, level: float = 0.95) -> list[Delta]:
    """Model a minus model b under each condition of the study."""
    metric = metric or results.study.metrics[0]
    return [paired_delta(results.scores[model_a], c, results.scores[model_b], c,
                         real_sets=results.real_sets, fake_sets=results.fake_sets,
                         metric=metric, n=n, seed=seed, level=level, label=c)
            for c in results.study.condition_ids]


def condition_deltas(results: StudyResults, model: str, *, metric: str | None = None,
                     n: int = 1000, seed: int = 0, level: float = 0.95) -> list[Delta]:
    """Each condition minus the study's baseline, for one model (same images both sides)."""
    metric = metric or results.study.metrics[0]
    ms, base = results.scores[model], results.study.baseline
    return [paired_delta(ms, c, ms, base, real_sets=results.real_sets,
                         fake_sets=results.fake_sets, metric=metric, n=n, seed=seed,
                         level=level, label=c)
            for c in results.study.condition_ids if c != base]


def delta_frame(
    a: ModelScores, b: ModelScores, *, conditions: list[str], real_sets: list[str],
    metric: str = "auc", n: int = 200, seed: int = 0, level: float = 0.95,
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
            d = paired_delta(a, c, b, c, real_sets=reals, fake_sets=fakes, metric=metric, n=n,
                             seed=seed, level=level, label=c)
        except ValueError as exc:
            skipped.append(f"{c}: {exc}")
            continue
        rows.append({"condition": c, a.model: d.a, b.model: d.b, "delta": d.delta,
                     "low": d.low, "high": d.high, "images": d.images})
    cols = ["condition", a.model, b.model, "delta", "low", "high", "images"]
    return pd.DataFrame(rows, columns=cols), skipped
