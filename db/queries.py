"""Read and write helpers. Each takes a session, never commits, never opens its own.

Bulk writes go through Core ``INSERT ... ON CONFLICT DO NOTHING`` so that repeating an import or
resuming a job never duplicates a row. Aggregation helpers fetch whole columns in one SELECT so
pages can compute metrics vectorised over a million predictions.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Select, Table, case, exists, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from db.models import (
    Condition,
    DerivedImage,
    Image,
    ImageSet,
    Model,
    Prediction,
    Run,
    utcnow,
)
from spai.weights import ORIGINS

PREDICTION_COLUMNS = ("run_id", "image_id", "score", "logit", "attention", "error", "seconds")
INSERT_CHUNK = 20_000  # rows per executemany; keeps parameter batches bounded


@dataclass(frozen=True)
class RunSummary:
    run_id: int
    model: str
    imageset: str
    kind: str
    condition: str
    status: str
    n_predictions: int
    n_errors: int


def insert_ignore(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> int:
    """Insert ``rows`` into ``table``, silently skipping rows that hit a unique constraint.

    Returns the number of rows actually inserted.
    """
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        stmt = sqlite.insert(table).on_conflict_do_nothing()
    elif dialect == "postgresql":
        # psycopg's executemany gives no total rowcount: count the RETURNING rows instead.
        stmt = postgresql.insert(table).on_conflict_do_nothing().returning(*table.primary_key.columns)
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        raise NotImplementedError(f"insert_ignore: unsupported dialect {dialect!r}")
    added = 0
    for start in range(0, len(rows), INSERT_CHUNK):
        result = session.connection().execute(stmt, list(rows[start : start + INSERT_CHUNK]))
        added += len(result.all()) if dialect == "postgresql" else max(result.rowcount, 0)
    return added


def bulk_insert_predictions(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Insert prediction dicts (keys from ``PREDICTION_COLUMNS``); existing (run, image) pairs
    are kept as they are. Returns the number inserted.

    Only the columns some row sets are written (others stay NULL), which keeps the per-row
    cost down when no row carries attention.
    """
    if not rows:
        return 0
    keys = set().union(*(r.keys() for r in rows))
    unknown = keys - set(PREDICTION_COLUMNS)
    if unknown or not {"run_id", "image_id"} <= keys:
        raise ValueError(
            f"prediction rows need run_id and image_id and may only have {PREDICTION_COLUMNS}; got {sorted(keys)}"
        )
    cols = [c for c in PREDICTION_COLUMNS if c in keys]
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return _insert_predictions_pg(session, cols, rows)
    if dialect != "sqlite":  # pragma: no cover - only SQLite and PostgreSQL are supported
        return insert_ignore(session, Prediction.__table__, [{c: r.get(c) for c in cols} for r in rows])
    # SQLite fast path (about 3x): a plain executemany of tuples, skipping per-row parameter
    # processing; attention is serialised here exactly as the JSON column type would.
    sql = f"INSERT INTO predictions ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) ON CONFLICT DO NOTHING"
    if "attention" in cols:
        data = [tuple(_json_or_none(r.get(c)) if c == "attention" else r.get(c) for c in cols) for r in rows]
    else:
        data = [tuple(r.get(c) for c in cols) for r in rows]
    added = 0
    for start in range(0, len(data), INSERT_CHUNK):
        result = session.connection().exec_driver_sql(sql, data[start : start + INSERT_CHUNK])
        added += max(result.rowcount, 0)
    return added


_PG_ARRAY_TYPES = {
    "run_id": "integer",
    "image_id": "integer",
    "score": "float8",
    "logit": "float8",
    "attention": "text",
    "error": "text",
    "seconds": "float8",
}


def _insert_predictions_pg(session: Session, cols: list[str], rows: Sequence[dict]) -> int:
    """PostgreSQL fast path: one ``INSERT ... SELECT FROM unnest(arrays)`` per chunk."""
    select_list = ", ".join(f"u.{c}::json" if c == "attention" else f"u.{c}" for c in cols)
    arrays = ", ".join(f"%s::{_PG_ARRAY_TYPES[c]}[]" for c in cols)
    sql = (
        f"INSERT INTO predictions ({', '.join(cols)}) SELECT {select_list} "
        f"FROM unnest({arrays}) AS u({', '.join(cols)}) ON CONFLICT DO NOTHING"
    )
    added = 0
    for start in range(0, len(rows), INSERT_CHUNK):
        chunk = rows[start : start + INSERT_CHUNK]
        params = tuple(
            [_json_or_none(r.get(c)) for r in chunk] if c == "attention" else [r.get(c) for r in chunk] for c in cols
        )
        added += max(session.connection().exec_driver_sql(sql, params).rowcount, 0)
    return added


def _json_or_none(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def get_or_create_condition(
    session: Session,
    condition_id: str,
    *,
    family: str | None = None,
    params: dict | None = None,
    description: str | None = None,
) -> Condition:
    """Return the condition row, creating it (family defaults to the id's first segment)."""
    cond = session.get(Condition, condition_id)
    if cond is None:
        insert_ignore(
            session,
            Condition.__table__,
            [
                {
                    "id": condition_id,
                    "family": family or condition_id.split("/")[0],
                    "params": params or {},
                    "description": description,
                }
            ],
        )
        cond = session.get(Condition, condition_id)
    assert cond is not None, f"condition {condition_id!r} could not be created"
    return cond


def get_or_create_model(
    session: Session,
    name: str,
    *,
    origin: str,
    path: str | None = None,
    sha256: str | None = None,
    config: dict | None = None,
    owner: str | None = None,
) -> Model:
    """Return the model named ``name``, creating it with the given fields (and ``owner``, see
    ``db.owners``) if absent. ``origin`` is one of ``spai.weights.ORIGINS``."""
    if origin not in ORIGINS:
        raise ValueError(f"model origin {origin!r} is not one of {', '.join(ORIGINS)}")
    insert_ignore(
        session,
        Model.__table__,
        [
            {
                "name": name,
                "origin": origin,
                "path": path,
                "sha256": sha256,
                "config": config or {},
                "created_at": utcnow(),
                "owner": owner,
            }
        ],
    )
    return session.scalars(select(Model).where(Model.name == name)).one()


def get_or_create_run(
    session: Session,
    model_id: int,
    imageset_id: int,
    condition_id: str,
    *,
    status: str = "pending",
    settings: dict | None = None,
    owner: str | None = None,
) -> Run:
    """Return the run for (model, image set, condition), creating it (for ``owner``) if
    absent."""
    insert_ignore(
        session,
        Run.__table__,
        [
            {
                "model_id": model_id,
                "imageset_id": imageset_id,
                "condition_id": condition_id,
                "status": status,
                "settings": settings or {},
                "created_at": utcnow(),
                "owner": owner,
            }
        ],
    )
    return session.scalars(
        select(Run).where(
            Run.model_id == model_id,
            Run.imageset_id == imageset_id,
            Run.condition_id == condition_id,
        )
    ).one()


def images_without_prediction(session: Session, run_id: int, imageset_id: int) -> list[Image]:
    """Images of the set that have no prediction in the run yet (what a resumed job must do)."""
    done = exists().where(Prediction.run_id == run_id, Prediction.image_id == Image.id)
    return list(session.scalars(select(Image).where(Image.imageset_id == imageset_id, ~done).order_by(Image.id)))


def count_predictions(session: Session, run_id: int) -> int:
    return session.scalar(select(func.count()).where(Prediction.run_id == run_id)) or 0


def derived_paths(session: Session, imageset_id: int, condition_id: str) -> dict[int, DerivedImage]:
    """image_id -> derived image row, for the set under the condition."""
    rows = session.scalars(
        select(DerivedImage)
        .join(Image, Image.id == DerivedImage.image_id)
        .where(Image.imageset_id == imageset_id, DerivedImage.condition_id == condition_id)
    )
    return {d.image_id: d for d in rows}


def run_predictions(session: Session, run_id: int) -> pd.DataFrame:
    """One run's predictions joined with image paths, in image order (one SELECT)."""
    stmt = (
        select(
            Prediction.image_id,
            Image.relpath.label("image"),
            Prediction.score,
            Prediction.logit,
            Prediction.error,
            Prediction.seconds,
        )
        .join(Image, Image.id == Prediction.image_id)
        .where(Prediction.run_id == run_id)
        .order_by(Prediction.image_id)
    )
    cols = fetch_columns(session, stmt)
    frame = pd.DataFrame(cols) if cols["image_id"] else pd.DataFrame(columns=list(cols))
    for name in ("score", "logit", "seconds"):
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
    return frame


def fetch_columns(session: Session, stmt: Select) -> dict[str, tuple]:
    """Run a Core SELECT on the session's connection and return it column-wise.

    Bypasses Row construction (about 4x faster than ``session.execute(...).all()`` on SQLite):
    the statement is compiled with its parameters and run on the raw DB-API cursor inside the
    session's transaction. Only for plain columns (numbers, strings): no result type processing.
    """
    conn = session.connection()
    compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.construct_params()
    args = tuple(params[k] for k in compiled.positiontup) if compiled.positional else params
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.execute(str(compiled), args)
        rows = cursor.fetchall()
    finally:
        cursor.close()
    names = list(stmt.selected_columns.keys())
    columns = list(zip(*rows)) if rows else [() for _ in names]
    return dict(zip(names, columns))


def score_arrays(session: Session, run_ids: Sequence[int]) -> dict[int, np.ndarray]:
    """run_id -> float array of its scores in image order (errors excluded), in one query."""
    if not run_ids:
        return {}
    cols = fetch_columns(
        session,
        (
            select(Prediction.run_id, Prediction.score)
            .where(Prediction.run_id.in_([int(r) for r in run_ids]), Prediction.score.is_not(None))
            .order_by(Prediction.run_id, Prediction.image_id)
        ),
    )
    out = {int(r): np.empty(0, dtype=np.float64) for r in run_ids}
    ids = np.asarray(cols["run_id"], dtype=np.int64)
    scores = np.asarray(cols["score"], dtype=np.float64)
    if len(ids):
        cuts = np.flatnonzero(np.diff(ids)) + 1
        for chunk_ids, chunk in zip(np.split(ids, cuts), np.split(scores, cuts)):
            out[int(chunk_ids[0])] = chunk
    return out


def study_frame(session: Session, model_id: int, condition_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """All scored predictions of one model as columns imageset, kind, condition, image_id,
    score, label (1 = fake), in one SELECT; ready for grouped, vectorised metrics."""
    label = case((ImageSet.kind == "fake", 1), else_=0).label("label")
    stmt = (
        select(
            ImageSet.name.label("imageset"),
            ImageSet.kind,
            Run.condition_id.label("condition"),
            Prediction.image_id,
            Prediction.score,
            label,
        )
        .select_from(Prediction)
        .join(Run, Run.id == Prediction.run_id)
        .join(ImageSet, ImageSet.id == Run.imageset_id)
        .where(Run.model_id == int(model_id), Prediction.score.is_not(None))
        .order_by(Run.condition_id, ImageSet.name, Prediction.image_id)
    )
    if condition_ids is not None:
        stmt = stmt.where(Run.condition_id.in_(list(condition_ids)))
    cols = fetch_columns(session, stmt)
    return pd.DataFrame(
        {
            "imageset": pd.Categorical(cols["imageset"]),
            "kind": pd.Categorical(cols["kind"]),
            "condition": pd.Categorical(cols["condition"]),
            "image_id": np.asarray(cols["image_id"], dtype=np.int64),
            "score": np.asarray(cols["score"], dtype=np.float64),
            "label": np.asarray(cols["label"], dtype=np.int8),
        }
    )


def run_summaries(session: Session) -> list[RunSummary]:
    """Every run with its prediction and error counts (one grouped SELECT)."""
    n_err = func.count(Prediction.error)
    stmt = (
        select(
            Run.id,
            Model.name,
            ImageSet.name,
            ImageSet.kind,
            Run.condition_id,
            Run.status,
            func.count(Prediction.id),
            n_err,
        )
        .join(Model, Model.id == Run.model_id)
        .join(ImageSet, ImageSet.id == Run.imageset_id)
        .outerjoin(Prediction, Prediction.run_id == Run.id)
        .group_by(Run.id, Model.name, ImageSet.name, ImageSet.kind, Run.condition_id, Run.status)
        .order_by(Run.id)
    )
    return [RunSummary(*row) for row in session.execute(stmt).all()]
