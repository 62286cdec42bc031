"""Fake set x condition tables from score arrays: the robustness study's protocol on numpy.

The protocol is the study's (``robustness.evaluate``): each fake set F is scored against each
selected real set R on the pooled F ∪ R (fake = positive, scores as float32); a cell (fake set x
condition) is the plain mean over the real sets; the "mean" row is the plain mean over the fake
sets; "delta" is a condition's value minus the baseline condition's (default ``original``).

Models scored on different sets can be compared side by side: each model averages over the
selected real sets it has scores for (``CompareTable.real_sets``; the others are listed in
``unused_real_sets``), the same sets in every column, so a column whose condition lacks one of
them stays empty. Every empty cell carries its reason (``CompareTable.reasons``).

The statistics are ``robustness.metrics``' (``auc_matrix`` for every fake x real pair at once,
``protocol_replicates`` for the bootstrap); ``db.compare.load_scores`` fills a ``ScoreData`` from the
store in one query per run. Usage::

    table = compare_table(data, metric="auc", real_sets=default_real_sets([data]))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from robustness.metrics import (
    auc,
    auc_matrix,
    get_metric,
    percentile_interval,
    protocol_replicates,
    resample_counts,
    roc_curve_points,
)

__all__ = [
    "BOOTSTRAP_N",
    "MEAN_ROW",
    "ORIGINAL",
    "CompareTable",
    "ScoreData",
    "bootstrap_cells",
    "compare_table",
    "default_real_sets",
    "has_roc",
    "long_table",
    "roc_curve",
    "score_histogram",
]

ORIGINAL = "original"  # the registered condition id of unmodified images (robustness.compression)
MEAN_ROW = "mean"
BOOTSTRAP_N = 200  # replicates per cell for the hover intervals
ROC_MAX_POINTS = 400  # ROC curves are thinned to about this many points for plotting


@dataclass(frozen=True)
class ScoreData:
    """All scored predictions of one model, grouped by (condition, image set)."""

    model_id: int
    model_name: str
    groups: dict[tuple[str, str], np.ndarray]  # (condition, set name) -> float32 scores
    kinds: dict[str, str]  # set name -> "real" | "fake"
    imageset_ids: dict[str, int]  # set name -> id

    @property
    def conditions(self) -> list[str]:
        """Condition ids, ``original`` first, then alphabetical."""
        conds = {c for c, _ in self.groups}
        return sorted(conds, key=lambda c: (c != ORIGINAL, c))

    def sets(self, kind: str, condition: str | None = None) -> list[str]:
        return sorted({s for c, s in self.groups if self.kinds[s] == kind and (condition is None or c == condition)})

    @property
    def n_predictions(self) -> int:
        return int(sum(a.size for a in self.groups.values()))


@dataclass(frozen=True)
class CompareTable:
    """One model's table: rows = fake sets + "mean", columns = conditions."""

    model: str
    metric: str
    baseline: str | None
    real_sets: list[str]
    values: pd.DataFrame  # metric value per cell (NaN where a set is missing)
    delta: pd.DataFrame  # values minus the baseline column (NaN without a baseline)
    counts: pd.DataFrame  # fake images behind each cell
    reasons: pd.DataFrame  # why a cell is empty ("" where it has a value)
    unused_real_sets: list[str]  # selected real sets this model has no scores for


def default_real_sets(datas: Sequence[ScoreData], conditions: Sequence[str] | None = None) -> list[str]:
    """The real sets each model has scores for under every compared condition it was scored
    under (all its real sets under those conditions when no set covers them all), pooled over
    the models: each model then averages over its own (see the module docstring)."""
    chosen: set[str] = set()
    for d in datas:
        conds = [c for c in (conditions if conditions is not None else d.conditions) if c in d.conditions]
        per_cond = [set(d.sets("real", c)) for c in conds]
        common = set.intersection(*per_cond) if per_cond else set()
        chosen |= common or set().union(*per_cond)
    return sorted(chosen)


def _pair_values(fn, fake: np.ndarray, reals: list[np.ndarray]) -> float:
    vals = []
    for r in reals:
        labels = np.r_[np.ones(fake.size, np.int8), np.zeros(r.size, np.int8)]
        vals.append(fn(labels, np.concatenate([fake, r])))
    return float(np.mean(vals))


def compare_table(
    data: ScoreData,
    *,
    metric: str = "auc",
    real_sets: Sequence[str] | None = None,
    conditions: Sequence[str] | None = None,
    fake_sets: Sequence[str] | None = None,
    baseline: str | None = ORIGINAL,
) -> CompareTable:
    """The fake set x condition table of ``metric`` (see the module docstring)."""
    fn = get_metric(metric).fn
    conds = list(conditions) if conditions is not None else data.conditions
    chosen = list(real_sets) if real_sets is not None else default_real_sets([data], conds)
    reals = [r for r in chosen if data.kinds.get(r) == "real"]
    fakes = list(fake_sets) if fake_sets is not None else data.sets("fake")
    values = pd.DataFrame(np.nan, index=fakes, columns=conds)
    counts = pd.DataFrame(0, index=fakes, columns=conds)
    reasons = pd.DataFrame("", index=fakes, columns=conds, dtype=object)
    for c in conds:
        present = [f for f in fakes if data.groups.get((c, f)) is not None and data.groups[(c, f)].size]
        for f in fakes:  # one reason for a whole column the model never scored
            if f not in present:
                reasons.loc[f, c] = (
                    f"{data.model_name} has no scores of {f} under {c}"
                    if present
                    else f"{data.model_name} has no scores under {c}"
                )
        missing = [r for r in reals if (c, r) not in data.groups]
        if not reals or missing:
            why = (
                f"real set {', '.join(missing)} not scored under {c} by {data.model_name}"
                if reals
                else f"none of the selected real sets was scored by {data.model_name}"
            )
            reasons.loc[present, c] = why
            continue
        real_arrays = [data.groups[(c, r)] for r in reals]
        if fn is auc and present:  # fast path: one sort per condition for every pair
            m = auc_matrix([data.groups[(c, f)] for f in present], real_arrays)
            values.loc[present, c] = m.mean(axis=1)
        for f in present:
            if fn is not auc:
                values.loc[f, c] = _pair_values(fn, data.groups[(c, f)], real_arrays)
            counts.loc[f, c] = data.groups[(c, f)].size
    values.loc[MEAN_ROW] = values.mean(axis=0, skipna=False)
    counts.loc[MEAN_ROW] = counts.sum(axis=0)
    reasons.loc[MEAN_ROW] = [_mean_reason(values[c].drop(MEAN_ROW)) for c in conds]
    base = baseline if baseline in conds else None
    delta = values.sub(values[base], axis=0) if base else values * np.nan
    values.index.name = delta.index.name = counts.index.name = reasons.index.name = "fake_set"
    unused = [r for r in chosen if r not in reals]
    return CompareTable(data.model_name, metric, base, reals, values, delta, counts, reasons, unused)


def _mean_reason(column: pd.Series) -> str:
    empty = list(column.index[column.isna()])
    if not empty:
        return ""
    if len(empty) == len(column):
        return "no fake set has a value under this condition"
    return f"the mean needs every fake set; no value for {', '.join(empty)}"


def bootstrap_cells(
    data: ScoreData,
    table: CompareTable,
    *,
    n: int = BOOTSTRAP_N,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Percentile bootstrap intervals (low, high) for every fake-set cell of ``table``.

    Each replicate resamples the fake set and every real set (stratified, with replacement)
    and recomputes the cell's mean over the real sets (``robustness.metrics``' one bootstrap:
    ``resample_counts`` + ``protocol_replicates``).
    """
    get_metric(table.metric)
    rng = np.random.default_rng(seed)
    low = pd.DataFrame(np.nan, index=table.values.index, columns=table.values.columns)
    high = low.copy()
    for c in table.values.columns:
        if not table.real_sets or any((c, r) not in data.groups for r in table.real_sets):
            continue
        reals = [data.groups[(c, r)] for r in table.real_sets]
        for f in table.values.index.drop(MEAN_ROW):
            fake = data.groups.get((c, f))
            if fake is None or fake.size == 0 or np.isnan(table.values.loc[f, c]):
                continue
            wf = resample_counts(rng, fake.size, n)
            wr = [resample_counts(rng, r.size, n) for r in reals]
            reps = protocol_replicates([fake], reals, [wf], wr, metric=table.metric)
            low.loc[f, c], high.loc[f, c] = percentile_interval(reps, level=level)
    return low, high


def has_roc(data: ScoreData, condition: str, real_sets: Sequence[str]) -> bool:
    """Whether ``roc_curve`` has fake and selected real scores under ``condition``."""
    return bool(data.sets("fake", condition)) and any((condition, r) in data.groups for r in real_sets)


def roc_curve(
    data: ScoreData,
    condition: str,
    real_sets: Sequence[str],
    fake_sets: Sequence[str] | None = None,
    *,
    max_points: int = ROC_MAX_POINTS,
) -> tuple[np.ndarray, np.ndarray]:
    """(fpr, tpr) of the pooled fake sets against the pooled real sets under ``condition``,
    thinned to about ``max_points`` points (end points kept)."""
    fakes = [
        data.groups[(condition, f)]
        for f in (fake_sets or data.sets("fake", condition))
        if (condition, f) in data.groups
    ]
    reals = [data.groups[(condition, r)] for r in real_sets if (condition, r) in data.groups]
    if not fakes or not reals:
        raise ValueError(f"condition {condition!r} has no fake or no selected real scores")
    fs, rs = np.concatenate(fakes), np.concatenate(reals)
    fpr, tpr, _ = roc_curve_points(
        np.r_[np.ones(fs.size, np.int8), np.zeros(rs.size, np.int8)], np.concatenate([fs, rs])
    )
    if fpr.size > max_points:
        keep = np.unique(np.r_[np.linspace(0, fpr.size - 1, max_points).astype(int)])
        fpr, tpr = fpr[keep], tpr[keep]
    return fpr, tpr


def score_histogram(
    data: ScoreData,
    condition: str,
    real_sets: Sequence[str],
    fake_sets: Sequence[str] | None = None,
    *,
    bins: int = 40,
) -> pd.DataFrame:
    """Share of real and of fake images per score bin in [0, 1] (columns bin, kind, share)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    parts = {
        "real": [data.groups[(condition, r)] for r in real_sets if (condition, r) in data.groups],
        "fake": [
            data.groups[(condition, f)]
            for f in (fake_sets or data.sets("fake", condition))
            if (condition, f) in data.groups
        ],
    }
    frames = []
    for kind, arrays in parts.items():
        if not arrays:
            continue
        s = np.clip(np.concatenate(arrays), 0.0, 1.0)
        hist, _ = np.histogram(s, bins=edges)
        frames.append(pd.DataFrame({"bin": (edges[:-1] + edges[1:]) / 2, "kind": kind, "share": hist / max(s.size, 1)}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["bin", "kind", "share"])


def long_table(tables: Sequence[CompareTable]) -> pd.DataFrame:
    """All tables as one tidy frame (model, fake_set, condition, value, delta, n) for CSV."""
    out = []
    for t in tables:
        v = t.values.stack(future_stack=True).rename("value")
        d = t.delta.stack(future_stack=True).rename("delta")
        n = t.counts.stack(future_stack=True).rename("n_fake_images")
        frame = pd.concat([v, d, n], axis=1).reset_index()
        frame.columns = ["fake_set", "condition", t.metric, "delta", "n_fake_images"]
        frame.insert(0, "model", t.model)
        frame["real_sets"] = "+".join(t.real_sets)
        out.append(frame)
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()
