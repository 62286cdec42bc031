"""Export a selection of predictions to CSV or Parquet (by file extension or ``fmt``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from sqlalchemy import case, select
from sqlalchemy.orm import Session

from db.models import Image, ImageSet, Model, Prediction, Run
from core.atomic import atomic_path
from core.cli_errors import closest

EXPORT_FORMATS = ("csv", "parquet")


def predictions_frame(
    session: Session,
    *,
    run_ids: Sequence[int] | None = None,
    models: Sequence[str] | None = None,
    imagesets: Sequence[str] | None = None,
    conditions: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Predictions matching every given filter (None = no filter), one row each, one SELECT."""
    stmt = (
        select(
            Prediction.run_id,
            Model.name.label("model"),
            ImageSet.name.label("imageset"),
            ImageSet.kind,
            case((ImageSet.kind == "fake", 1), else_=0).label("label"),
            Run.condition_id.label("condition"),
            Image.relpath.label("image"),
            Image.sha256,
            Prediction.score,
            Prediction.logit,
            Prediction.error,
            Prediction.seconds,
        )
        .select_from(Prediction)
        .join(Run, Run.id == Prediction.run_id)
        .join(Model, Model.id == Run.model_id)
        .join(ImageSet, ImageSet.id == Run.imageset_id)
        .join(Image, Image.id == Prediction.image_id)
        .order_by(Prediction.run_id, Prediction.image_id)
    )
    if run_ids is not None:
        stmt = stmt.where(Prediction.run_id.in_(list(run_ids)))
    if models is not None:
        stmt = stmt.where(Model.name.in_(list(models)))
    if imagesets is not None:
        stmt = stmt.where(ImageSet.name.in_(list(imagesets)))
    if conditions is not None:
        stmt = stmt.where(Run.condition_id.in_(list(conditions)))
    return pd.DataFrame(session.execute(stmt).all(), columns=list(stmt.selected_columns.keys()))


def _check_known(session: Session, column, wanted: Sequence | None, what: str) -> None:
    """ValueError naming the closest stored values when a filter value matches nothing."""
    if not wanted:
        return
    known = {v for v in session.scalars(select(column).distinct()) if v is not None}
    for value in wanted:
        if value not in known:
            hint = closest(str(value), [str(k) for k in known])
            raise ValueError(f"no {what} {value!r} in the store{hint}")


def export_predictions(
    session: Session,
    out_path: str | Path,
    *,
    fmt: str | None = None,
    run_ids: Sequence[int] | None = None,
    models: Sequence[str] | None = None,
    imagesets: Sequence[str] | None = None,
    conditions: Sequence[str] | None = None,
) -> int:
    """Write the selected predictions to ``out_path``; returns the number of rows written."""
    out = Path(out_path)
    fmt = (fmt or out.suffix.lstrip(".")).lower()
    if fmt not in EXPORT_FORMATS:
        raise ValueError(
            f"export format must be one of {EXPORT_FORMATS} (from --format or the file extension), got {fmt!r}"
        )
    for column, wanted, what in (
        (Run.id, run_ids, "run id"),
        (Model.name, models, "model"),
        (ImageSet.name, imagesets, "image set"),
        (Run.condition_id, conditions, "condition"),
    ):
        _check_known(session, column, wanted, what)
    frame = predictions_frame(session, run_ids=run_ids, models=models, imagesets=imagesets, conditions=conditions)
    with atomic_path(out) as tmp:  # a failed export never leaves a file that looks whole
        if fmt == "csv":
            frame.to_csv(tmp, index=False)
        else:
            frame.to_parquet(tmp, index=False, engine="pyarrow")
    return len(frame)
