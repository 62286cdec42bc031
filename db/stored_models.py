"""The models in the store: which ones scored given weights, their run and prediction counts,
and their evaluation per condition (the Models page). Every function takes a session and never
commits (see ``db.queries``).

    with session_scope(readonly=True) as s:
        ids = store_model_ids(s, sha256=info.sha256, origin=info.origin)
        summaries = [evaluation_summary(s, i) for i in ids]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from db.importers import SPAI_STUDY_MODEL
from db.models import ORIGINAL, ImageSet, Model, Prediction, Run
from robustness.metrics import ap, auc
from spai.weights import OFFICIAL

__all__ = ["StoredModel", "evaluation_summary", "store_model_ids", "stored_models"]


@dataclass(frozen=True)
class StoredModel:
    id: int
    name: str
    origin: str
    path: str | None
    sha256: str | None
    n_runs: int
    n_predictions: int
    owner: str | None = None  # db.owners; None without sign-in


def stored_models(session: Session) -> list[StoredModel]:
    """Every model in the store with its run and prediction counts (one grouped SELECT)."""
    n_runs = func.count(func.distinct(Run.id))
    stmt = (
        select(
            Model.id, Model.name, Model.origin, Model.path, Model.sha256, n_runs, func.count(Prediction.id), Model.owner
        )
        .outerjoin(Run, Run.model_id == Model.id)
        .outerjoin(Prediction, Prediction.run_id == Run.id)
        .group_by(Model.id, Model.name, Model.origin, Model.path, Model.sha256, Model.owner)
        .order_by(Model.id)
    )
    return [StoredModel(*row) for row in session.execute(stmt).all()]


def store_model_ids(session: Session, *, sha256: str, origin: str) -> list[int]:
    """Store models whose scores came from these weights: same sha256, plus the study's SPAI
    scores when the weights are the official ones."""
    cond = Model.sha256 == sha256
    if origin == OFFICIAL:
        cond = or_(cond, Model.name == SPAI_STUDY_MODEL)
    return list(session.scalars(select(Model.id).where(cond).order_by(Model.id)))


def evaluation_summary(session: Session, model_id: int) -> pd.DataFrame:
    """Per condition: real and fake counts, pooled AUC and AP (all fake sets vs all real sets)
    and the mean score of each kind, from the stored predictions of one model."""
    stmt = (
        select(Run.condition_id.label("condition"), ImageSet.kind, Prediction.score)
        .select_from(Prediction)
        .join(Run, Run.id == Prediction.run_id)
        .join(ImageSet, ImageSet.id == Run.imageset_id)
        .where(Run.model_id == model_id, Prediction.score.is_not(None))
    )
    frame = pd.DataFrame(session.execute(stmt).all(), columns=["condition", "kind", "score"])
    rows = []
    for cond, part in frame.groupby("condition", sort=True):
        y = (part["kind"] == "fake").to_numpy(dtype=np.int8)
        s = part["score"].to_numpy(dtype=np.float64)
        both = 0 < y.sum() < len(y)
        rows.append(
            {
                "condition": cond,
                "n_real": int((y == 0).sum()),
                "n_fake": int(y.sum()),
                "auc": auc(y, s) if both else np.nan,
                "ap": ap(y, s) if both else np.nan,
                "mean_score_real": float(s[y == 0].mean()) if (y == 0).any() else np.nan,
                "mean_score_fake": float(s[y == 1].mean()) if y.any() else np.nan,
            }
        )
    cols = ["condition", "n_real", "n_fake", "auc", "ap", "mean_score_real", "mean_score_fake"]
    out = pd.DataFrame(rows, columns=cols)
    if len(out):  # the unmodified images first
        out = out.sort_values("condition", key=lambda c: c != ORIGINAL, kind="stable")
    return out.reset_index(drop=True)
