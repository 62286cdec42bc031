"""A study's tables from stored scores, by the study's protocol (``robustness.evaluate``).

For each model and metric: rows are the fake sets and a "mean" row, columns the conditions; a
cell is the fake set's metric against each selected real set, averaged over the real sets; the
mean row averages the fake sets. Optional intervals are the protocol's percentile bootstrap
(``robustness.evaluate.study_mean_ci``) for every cell and for the mean row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from robustness.evaluate import study_mean_ci, study_table
from robustness.study.schema import Study
from robustness.study.store import SetScores

__all__ = ["MEAN_ROW", "ModelScores", "StudyResults", "Table", "compute_results", "frames_for"]

MEAN_ROW = "mean"


@dataclass(frozen=True)
class ModelScores:
    """One model's stored scores for the study: (condition, set) -> scores by image id."""

    model: str
    groups: dict[tuple[str, str], SetScores]

    def sets(self, kind: str, condition: str | None = None) -> list[str]:
        return sorted(
            {s for (c, s), g in self.groups.items() if g.kind == kind and (condition is None or c == condition)}
        )


@dataclass(frozen=True)
class Table:
    """One model x metric table; ``low``/``high`` are None without bootstrap."""

    model: str
    metric: str
    values: pd.DataFrame  # index fake sets + "mean", columns condition ids
    low: pd.DataFrame | None = None
    high: pd.DataFrame | None = None


@dataclass(frozen=True)
class StudyResults:
    study: Study
    scores: dict[str, ModelScores]  # model name -> scores
    real_sets: list[str]
    fake_sets: list[str]
    tables: dict[tuple[str, str], Table]  # (model, metric) -> table

    def mean(self, model: str, metric: str, condition: str) -> float:
        return float(self.tables[(model, metric)].values.loc[MEAN_ROW, condition])


def frames_for(ms: ModelScores, condition: str, sets: list[str]) -> dict[str, pd.DataFrame]:
    """The ``fake_<set>``/``real_<set>`` frames ``robustness.evaluate`` reads."""
    out = {}
    for name in sets:
        g = ms.groups.get((condition, name))
        if g is None or g.scores.size == 0:
            continue
        out[f"{g.kind}_{name}"] = pd.DataFrame(
            {"spai": g.scores, "class": np.full(g.scores.size, 1 if g.kind == "fake" else 0)}
        )
    return out


def _pick_sets(study: Study, scores: dict[str, ModelScores]) -> tuple[list[str], list[str]]:
    """Real and fake sets: the study's lists, else those scored under every condition of
    every model."""
    picked = []
    for kind, chosen in (("real", study.real_sets), ("fake", study.fake_sets)):
        if chosen is not None:
            names = list(chosen)
        else:
            common = None
            for ms in scores.values():
                for c in study.condition_ids:
                    have = set(ms.sets(kind, c))
                    common = have if common is None else common & have
            names = sorted(common or [])
        missing = [
            (m, c, n) for m, ms in scores.items() for c in study.condition_ids for n in names if (c, n) not in ms.groups
        ]
        if missing:
            m, c, n = missing[0]
            raise ValueError(
                f"model {m!r} has no scores for the {kind} set {n!r} under "
                f"{c!r} ({len(missing)} such gaps); check the study's "
                f"{kind}_sets and conditions"
            )
        if not names:
            raise ValueError(f"no {kind} set is scored under every condition by every model")
        picked.append(names)
    return picked[0], picked[1]


def compute_results(study: Study, scores: dict[str, ModelScores], *, bootstrap: bool | None = None) -> StudyResults:
    """Every (model, metric) table; intervals when ``bootstrap`` (default: the study's)."""
    reals, fakes = _pick_sets(study, scores)
    boot = study.bootstrap if bootstrap is None or bootstrap else None
    if bootstrap and boot is None:
        from robustness.study.schema import Bootstrap

        boot = Bootstrap()
    tables = {}
    for model, ms in scores.items():
        for metric in study.metrics:
            cols, lows, highs = {}, {}, {}
            for c in study.condition_ids:
                frames = frames_for(ms, c, reals + fakes)
                st = study_table(frames, metric=metric, real_sets=reals, fake_sets=fakes)
                cols[c] = pd.concat([st.table["mean"], pd.Series({MEAN_ROW: st.mean})])
                if boot is not None:
                    lo, hi = {}, {}
                    for row in fakes + [MEAN_ROW]:
                        ci = study_mean_ci(
                            frames,
                            metric=metric,
                            n=boot.n,
                            seed=boot.seed,
                            level=boot.level,
                            real_sets=reals,
                            fake_sets=fakes if row == MEAN_ROW else [row],
                        )
                        lo[row], hi[row] = ci.low, ci.high
                    lows[c], highs[c] = pd.Series(lo), pd.Series(hi)
            values = pd.DataFrame(cols).loc[fakes + [MEAN_ROW]]
            low = pd.DataFrame(lows).loc[values.index] if boot is not None else None
            high = pd.DataFrame(highs).loc[values.index] if boot is not None else None
            tables[(model, metric)] = Table(model, metric, values, low, high)
    return StudyResults(study, scores, reals, fakes, tables)
