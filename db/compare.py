"""Score arrays for the Compare page from the prediction store (queries only).

Scores of one model are fetched with one SELECT per run straight into numpy (``load_scores``),
so a million predictions load in about a second; the tables, intervals and curves are computed
from them by ``robustness.score_tables``.

Usage::

    with session_scope(readonly=True) as s:
        data = load_scores(s, model_id)
    table = score_tables.compare_table(data, real_sets=score_tables.default_real_sets([data]))
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import ImageSet, Model, Prediction, Run
from robustness.score_tables import ScoreData


@dataclass(frozen=True)
class ModelRow:
    id: int
    name: str
    origin: str
    version: int  # highest prediction id among the model's runs: changes when scores change


@dataclass(frozen=True)
class RunFocus:
    """One run to show on the Compare page (from its ``?run=ID`` link)."""

    run_id: int
    model_id: int
    model_name: str
    imageset: str
    kind: str  # real | fake
    condition: str


def models_with_predictions(session: Session) -> list[ModelRow]:
    """Models that have runs with predictions, most runs first. ``version`` is the highest
    prediction id of the model's runs: a cheap change marker for caches, not a count
    (counting a million rows costs a second; this reads one index entry per run)."""
    last = select(func.max(Prediction.id)).where(Prediction.run_id == Run.id).correlate(Run).scalar_subquery()
    stmt = select(Model.id, Model.name, Model.origin, Run.id, last).join(Run, Run.model_id == Model.id)
    runs: dict[int, list] = {}
    for mid, name, origin, _, top in session.execute(stmt):
        if top is not None:
            entry = runs.setdefault(mid, [name, origin, 0, 0])
            entry[2] += 1
            entry[3] = max(entry[3], int(top))
    order = sorted(runs.items(), key=lambda kv: (-kv[1][2], kv[1][0]))
    return [ModelRow(mid, name, origin, top) for mid, (name, origin, _, top) in order]


def run_focus(session: Session, run_id: int) -> RunFocus | None:
    """The model, image set and condition of a run, or None when there is no such run."""
    row = session.execute(
        select(Run.id, Model.id, Model.name, ImageSet.name, ImageSet.kind, Run.condition_id)
        .join(Model, Model.id == Run.model_id)
        .join(ImageSet, ImageSet.id == Run.imageset_id)
        .where(Run.id == run_id)
    ).one_or_none()
    return RunFocus(*row) if row is not None else None


def load_scores(session: Session, model_id: int, condition_ids: Sequence[str] | None = None) -> ScoreData:
    """Every scored prediction of the model (optionally only some conditions), in one query."""
    model = session.get(Model, model_id)
    if model is None:
        raise KeyError(f"no model with id {model_id}")
    runs_stmt = (
        select(Run.id, Run.condition_id, ImageSet.name, ImageSet.kind, ImageSet.id)
        .join(ImageSet, ImageSet.id == Run.imageset_id)
        .where(Run.model_id == model_id)
    )
    if condition_ids is not None:
        runs_stmt = runs_stmt.where(Run.condition_id.in_(list(condition_ids)))
    runs = session.execute(runs_stmt).all()
    kinds = {name: kind for _, _, name, kind, _ in runs}
    set_ids = {name: int(sid) for _, _, name, _, sid in runs}
    groups: dict[tuple[str, str], np.ndarray] = {}
    for rid, cond, name, _, _ in runs:  # one indexed SELECT per run (= per table selection)
        scores = _score_column(
            session, select(Prediction.score).where(Prediction.run_id == rid, Prediction.score.is_not(None))
        )
        if scores.size:
            groups[(cond, name)] = scores.astype(np.float32)  # the study read float32
    return ScoreData(model_id, model.name, groups, kinds, set_ids)


def _score_column(session: Session, stmt) -> np.ndarray:
    """One float column straight from the DBAPI cursor (no Row objects: ~10x faster)."""
    cursor = session.connection().execute(stmt).cursor
    return np.fromiter(itertools.chain.from_iterable(cursor), dtype=np.float64)
