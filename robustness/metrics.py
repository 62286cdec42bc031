"""Binary detection metrics as pure numpy functions (scikit-learn conventions).

Label 1 = fake (AI-generated) = positive class; a score is P(fake). Signatures follow sklearn:
ground truth first, scores second, options keyword-only. Ties in scores are handled exactly as
sklearn's ``roc_auc_score`` / ``average_precision_score`` / ``roc_curve`` (one ROC point per
distinct score), so AUC equals the Mann-Whitney statistic with average ranks.

The decision rule, stated once: an image is called fake when its score is strictly above the
threshold (``predict_fake``; default ``DECISION_THRESHOLD`` = 0.5), the official code's rule
(torchmetrics' binary accuracy thresholds with ``preds > threshold``), so a score of exactly
0.5 is called real. Thresholds at a false-positive rate (``threshold_at_fpr``) follow
sklearn's ``roc_curve`` instead: fake when the score is at least the threshold, which is one of
the real scores.

Many AUCs at once (``auc_matrix``: every fake set against every real set with one sort) and
bootstrap replicates of an AUC from resampling counts (``resample_counts``,
``auc_replicates``) are the vectorised forms the Compare page uses for a million scores.

The one bootstrap: a replicate is a resample of every set with replacement, written as counts
(``resample_counts``: how often each item is drawn); ``protocol_replicates`` evaluates the
study's protocol (every fake set against every real set, averaged) under those counts, and
``percentile_interval`` turns replicates into an interval. ``bootstrap_ci`` (one labelled
array), ``robustness.evaluate.study_mean_ci``, ``robustness.score_tables.bootstrap_cells`` and
the paired deltas of ``robustness.study.deltas`` (one set of counts shared by both sides) are
all this.

Example::

    >>> auc([0, 0, 1, 1], [0.1, 0.5, 0.5, 0.9])
    0.875
    >>> get_metric("auc").higher_is_better
    True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

DECISION_THRESHOLD = 0.5  # the model's own decision threshold on P(fake)

__all__ = [
    "DECISION_THRESHOLD",
    "METRICS",
    "BootstrapCI",
    "MetricSpec",
    "acc_at",
    "ap",
    "auc",
    "auc_matrix",
    "auc_replicates",
    "bootstrap_ci",
    "eer",
    "get_metric",
    "min_reals_for_fpr",
    "percentile_interval",
    "predict_fake",
    "protocol_replicates",
    "resample_counts",
    "roc_curve_points",
    "threshold_at_fpr",
    "tpr_at_fpr",
]


def _check(y_true: ArrayLike, y_score: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    yt = np.asarray(y_true).ravel()
    ys = np.asarray(y_score, dtype=np.float64).ravel()
    if yt.shape != ys.shape:
        raise ValueError(f"y_true and y_score differ in length: {yt.size} vs {ys.size}")
    if yt.size == 0:
        raise ValueError("empty input")
    if not np.isin(yt, (0, 1)).all():
        raise ValueError("y_true must contain only 0 (real) and 1 (fake)")
    if np.isnan(ys).any():
        raise ValueError("y_score contains NaN")
    return yt.astype(np.int8), ys


def _need_both(yt: np.ndarray, what: str) -> None:
    if yt.all() or not yt.any():
        raise ValueError(f"{what} needs both classes (0 = real, 1 = fake) in y_true")


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks, ties get the mean of their positions."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])  # first index of each tie group
    ends = np.r_[starts[1:], xs.size]  # one past the last
    group_rank = (starts + ends + 1) / 2.0  # mean of positions start+1 .. end
    ranks = np.empty(x.size, dtype=np.float64)
    ranks[order] = np.repeat(group_rank, ends - starts)
    return ranks


def roc_curve_points(y_true: ArrayLike, y_score: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds): one point per distinct score, decreasing thresholds, starting at
    (0, 0) with threshold +inf (sklearn's ``roc_curve(drop_intermediate=False)``)."""
    yt, ys = _check(y_true, y_score)
    _need_both(yt, "roc_curve_points")
    order = np.argsort(-ys, kind="mergesort")
    ys, yt = ys[order], yt[order]
    last = np.r_[np.flatnonzero(ys[1:] != ys[:-1]), ys.size - 1]  # last index per distinct score
    tps = np.cumsum(yt)[last]
    fps = (last + 1) - tps
    tpr = np.r_[0.0, tps / tps[-1]]
    fpr = np.r_[0.0, fps / fps[-1]]
    return fpr, tpr, np.r_[np.inf, ys[last]]


def auc(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Area under the ROC curve (ties count one half)."""
    yt, ys = _check(y_true, y_score)
    _need_both(yt, "auc")
    n_pos = int(yt.sum())
    n_neg = yt.size - n_pos
    rank_sum = _average_ranks(ys)[yt == 1].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def ap(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Average precision: sum over distinct thresholds of (R_n - R_{n-1}) * P_n."""
    yt, ys = _check(y_true, y_score)
    if not yt.any():
        raise ValueError("ap needs at least one positive (fake) sample")
    order = np.argsort(-ys, kind="mergesort")
    ys, yt = ys[order], yt[order]
    last = np.r_[np.flatnonzero(ys[1:] != ys[:-1]), ys.size - 1]
    tps = np.cumsum(yt)[last].astype(np.float64)
    precision = tps / (last + 1)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def predict_fake(y_score: ArrayLike, *, threshold: float = DECISION_THRESHOLD) -> np.ndarray:
    """The decision rule: fake where the score is strictly above ``threshold`` (see above).

    >>> predict_fake([0.2, 0.5, 0.7]).tolist()
    [False, False, True]
    """
    return np.asarray(y_score, dtype=np.float64) > threshold


def acc_at(y_true: ArrayLike, y_score: ArrayLike, *, threshold: float = DECISION_THRESHOLD) -> float:
    """Accuracy of ``predict_fake`` at ``threshold``."""
    yt, ys = _check(y_true, y_score)
    return float(np.mean(predict_fake(ys, threshold=threshold) == (yt == 1)))


def auc_matrix(fakes: Sequence[ArrayLike], reals: Sequence[ArrayLike]) -> np.ndarray:
    """(len(fakes), len(reals)) AUCs of every fake set against every real set, each equal to
    ``auc`` on the pooled pair (ties count one half).

    One sort of all scores: for each tie group, the weight of real set j strictly below it
    plus half of the ties; a fake set's AUC numerator is its per-group counts times that.
    """
    arrays = [np.asarray(a, dtype=np.float64).ravel() for a in (*fakes, *reals)]
    sizes = np.array([a.size for a in arrays])
    if (sizes == 0).any():
        raise ValueError("auc_matrix needs non-empty score arrays")
    pool = np.concatenate(arrays)
    owner = np.repeat(np.arange(len(arrays)), sizes)
    order = np.argsort(pool, kind="stable")
    sp, so = pool[order], owner[order]
    new = np.r_[True, sp[1:] != sp[:-1]]
    group = np.cumsum(new) - 1  # tie group of each sorted score
    starts = np.flatnonzero(new)
    ends = np.r_[starts[1:], sp.size]  # one past each group's end
    n_groups, nf = starts.size, len(fakes)
    wins = np.empty((len(reals), n_groups))  # (R, G): real weight below + half the ties
    for j in range(len(reals)):
        cum = np.r_[0, np.cumsum(so == nf + j)]
        wins[j] = cum[starts] + 0.5 * (cum[ends] - cum[starts])
    is_fake = so < nf
    counts = np.bincount(so[is_fake] * n_groups + group[is_fake], minlength=nf * n_groups).reshape(
        nf, n_groups
    )  # (F, G)
    return (counts @ wins.T) / np.outer(sizes[:nf], sizes[nf:])  # (F, R)


def resample_counts(rng: np.random.Generator, size: int, n: int) -> np.ndarray:
    """(n, size) counts of each item in n resamples with replacement (a bootstrap as weights).
    The draws are ``rng.integers(0, size, (n, size))``: one call per set, all replicates."""
    idx = rng.integers(0, size, (n, size)) + np.arange(n)[:, None] * size
    return np.bincount(idx.ravel(), minlength=n * size).reshape(n, size).astype(np.float64)


def auc_replicates(fake: ArrayLike, real: ArrayLike, wf: np.ndarray, wr: np.ndarray) -> np.ndarray:
    """AUC (ties one half) of each replicate where item i counts ``w[k, i]`` times.

    Args:
        fake: (F,) scores; real: (R,) scores; wf: (n, F) and wr: (n, R) non-negative counts
            (``resample_counts``; all ones give ``auc``).
    Returns:
        (n,) weighted Mann-Whitney statistics, equal to ``auc`` on the resampled scores.
    """
    fake, real = np.asarray(fake, np.float64), np.asarray(real, np.float64)
    order = np.argsort(real, kind="mergesort")
    rs = real[order]
    cum = np.concatenate(
        [np.zeros((wr.shape[0], 1)), np.cumsum(wr[:, order], axis=1)], axis=1
    )  # (n, R + 1): real weight up to each sorted position
    lo = np.searchsorted(rs, fake, side="left")  # (F,) reals strictly below each fake
    hi = np.searchsorted(rs, fake, side="right")  # (F,) reals below or tied
    below, upto = cum[:, lo], cum[:, hi]  # (n, F)
    wins = below + 0.5 * (upto - below)
    return (wf * wins).sum(axis=1) / (wf.sum(axis=1) * wr.sum(axis=1))


def _cell_replicates(
    fn: Callable[[np.ndarray, np.ndarray], float],
    fs: np.ndarray,
    fy: np.ndarray | None,
    w1: np.ndarray,
    rs: np.ndarray,
    ry: np.ndarray | None,
    w2: np.ndarray,
) -> np.ndarray:
    """(n,) values of ``fn`` on one fake set and one real set under counts (labels None: the
    set's kind)."""
    if fn is auc and fy is None and ry is None:
        return auc_replicates(fs, rs, w1, w2)
    scores = np.r_[fs, rs]
    labels = np.r_[np.ones(fs.size, np.int8) if fy is None else fy, np.zeros(rs.size, np.int8) if ry is None else ry]
    weights = np.hstack([w1, w2])  # (n, F + R)
    if fn is auc:  # labels given: the positives and negatives of the two sets together
        pos = labels == 1
        return auc_replicates(scores[pos], scores[~pos], weights[:, pos], weights[:, ~pos])
    out = np.empty(weights.shape[0])
    for k, w in enumerate(weights.astype(np.int64)):  # expand counts into the resampled rows
        out[k] = fn(np.repeat(labels, w), np.repeat(scores, w))
    return out


def _plain(labels: Sequence[ArrayLike] | None, count: int, kind: int) -> list[np.ndarray | None]:
    if labels is None:
        return [None] * count
    out = [np.asarray(y).ravel() for y in labels]
    return [None if (y == kind).all() else y for y in out]


def protocol_replicates(
    fakes: Sequence[ArrayLike],
    reals: Sequence[ArrayLike],
    wf: Sequence[np.ndarray],
    wr: Sequence[np.ndarray],
    *,
    metric: str | Callable[[np.ndarray, np.ndarray], float] = "auc",
    fake_labels: Sequence[ArrayLike] | None = None,
    real_labels: Sequence[ArrayLike] | None = None,
) -> np.ndarray:
    """(n,) protocol means under resampling counts: the metric of every fake set against every
    real set, averaged over the cells, where item i of a set counts ``w[k, i]`` times in
    replicate k (``wf[j]``: (n, size of fake set j), from ``resample_counts``; rows of ones give
    the estimate). Items are labelled 1 in fake sets and 0 in real sets unless labels are given
    per item (a study file's class column decides). AUC is vectorised (``auc_replicates``);
    other metrics are computed on each replicate's resampled rows."""
    fn = get_metric(metric).fn if isinstance(metric, str) else metric
    fy, ry = _plain(fake_labels, len(fakes), 1), _plain(real_labels, len(reals), 0)
    fakes = [np.asarray(f, np.float64).ravel() for f in fakes]
    reals = [np.asarray(r, np.float64).ravel() for r in reals]
    cells = [
        _cell_replicates(fn, f, y1, w1, r, y2, w2)
        for f, y1, w1 in zip(fakes, fy, wf)
        for r, y2, w2 in zip(reals, ry, wr)
    ]
    return np.mean(cells, axis=0)


def percentile_interval(replicates: ArrayLike, *, level: float = 0.95) -> tuple[float, float]:
    """(low, high): the percentile bootstrap interval of ``replicates`` at ``level``."""
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(np.asarray(replicates, np.float64), [alpha, 1.0 - alpha])
    return float(low), float(high)


def threshold_at_fpr(y_real_scores: ArrayLike, *, fpr: float) -> float:
    """Smallest threshold t such that the share of real scores >= t is at most ``fpr``
    (call an image fake when score >= t); +inf when even the top score is too many."""
    s = np.sort(np.asarray(y_real_scores, dtype=np.float64).ravel())[::-1]
    if s.size == 0 or np.isnan(s).any():
        raise ValueError("threshold_at_fpr needs a non-empty array of real scores without NaN")
    if not 0.0 <= fpr <= 1.0:
        raise ValueError(f"fpr must be in [0, 1], got {fpr}")
    distinct = np.r_[np.flatnonzero(s[1:] != s[:-1]), s.size - 1]  # last index per value
    rates = (distinct + 1) / s.size  # share of reals >= s[distinct]
    ok = distinct[rates <= fpr]
    return float(s[ok[-1]]) if ok.size else float("inf")


def min_reals_for_fpr(fpr: float) -> int:
    """Fewest real scores for which ``threshold_at_fpr`` is finite: one real may score above
    the threshold only if it is at most ``fpr`` of them (n >= 1 / fpr)."""
    if not 0.0 < fpr <= 1.0:
        raise ValueError(f"fpr must be in (0, 1], got {fpr}")
    return int(np.ceil(1.0 / fpr - 1e-9))


def tpr_at_fpr(y_true: ArrayLike, y_score: ArrayLike, *, fpr: float = 0.01) -> float:
    """Highest TPR on the exact ROC curve among points with FPR <= ``fpr`` (no interpolation)."""
    f, t, _ = roc_curve_points(y_true, y_score)
    return float(t[f <= fpr + 1e-12].max())


def eer(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Equal error rate: where FPR = 1 - TPR, linearly interpolated between ROC points."""
    f, t, _ = roc_curve_points(y_true, y_score)
    fnr = 1.0 - t
    diff = fnr - f  # decreasing from 1 to -1 along the curve
    i = int(np.flatnonzero(diff <= 0)[0])
    if diff[i] == 0 or i == 0:
        return float(f[i])
    w = diff[i - 1] / (diff[i - 1] - diff[i])  # fraction of the segment where diff crosses 0
    return float(f[i - 1] + w * (f[i] - f[i - 1]))


@dataclass(frozen=True)
class BootstrapCI:
    """A metric value with its bootstrap percentile interval."""

    estimate: float  # metric on the full data
    low: float
    high: float
    level: float  # e.g. 0.95
    n: int  # bootstrap replicates


def bootstrap_ci(
    metric: str | Callable[[np.ndarray, np.ndarray], float],
    y_true: ArrayLike,
    y_score: ArrayLike,
    *,
    n: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> BootstrapCI:
    """Percentile bootstrap interval, resampling reals and fakes separately (stratified), so
    every replicate keeps both classes and the class balance (``protocol_replicates`` with one
    fake and one real set)."""
    fn = get_metric(metric).fn if isinstance(metric, str) else metric
    yt, ys = _check(y_true, y_score)
    rng = np.random.default_rng(seed)
    fake, real = ys[yt == 1], ys[yt == 0]
    wf = resample_counts(rng, fake.size, n)
    wr = resample_counts(rng, real.size, n)
    low, high = percentile_interval(protocol_replicates([fake], [real], [wf], [wr], metric=fn), level=level)
    return BootstrapCI(float(fn(yt, ys)), low, high, level, n)


@dataclass(frozen=True)
class MetricSpec:
    """A named metric with its direction, for tables and UIs."""

    name: str
    fn: Callable[[np.ndarray, np.ndarray], float]  # (y_true, y_score) -> float
    higher_is_better: bool
    description: str


METRICS: dict[str, MetricSpec] = {
    "auc": MetricSpec("auc", auc, True, "ROC AUC, fake = positive (ties as sklearn)"),
    "ap": MetricSpec("ap", ap, True, "Average precision, fake = positive"),
    "acc": MetricSpec("acc", acc_at, True, "Accuracy at threshold 0.5 (score > 0.5 = fake)"),
    "tpr@fpr1%": MetricSpec("tpr@fpr1%", lambda y, s: tpr_at_fpr(y, s, fpr=0.01), True, "TPR at 1% FPR (exact ROC)"),
    "tpr@fpr5%": MetricSpec("tpr@fpr5%", lambda y, s: tpr_at_fpr(y, s, fpr=0.05), True, "TPR at 5% FPR (exact ROC)"),
    "eer": MetricSpec("eer", eer, False, "Equal error rate (interpolated)"),
}


def get_metric(name: str) -> MetricSpec:
    """Look up a metric by name; unknown names raise KeyError listing the valid ones."""
    try:
        return METRICS[name]
    except KeyError:
        raise KeyError(f"Unknown metric {name!r}. Available: {', '.join(sorted(METRICS))}") from None
