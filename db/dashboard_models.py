"""Read helpers for the dashboard's Score, Inspect and Models pages.

Every function that reads the store takes a session and never commits (see ``db.queries``).
Verdict bands come from a reference run: the model's scores on real image sets, unmodified, give
the thresholds at chosen false-positive rates (``robustness.metrics.threshold_at_fpr``).

    with session_scope(readonly=True) as s:
        ids = store_model_ids(s, sha256=info.sha256, origin=info.origin)
        ref = reference_thresholds(s, ids)
    verdict(0.93, ref).label        # "likely AI-generated"
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from db.imagesets import resolve_inside
from db.models import ORIGINAL, Image, ImageSet, Model, Prediction, Run
from robustness.metrics import (
    DECISION_THRESHOLD,
    ap,
    auc,
    min_reals_for_fpr,
    predict_fake,
    threshold_at_fpr,
)
from spai.weights import OFFICIAL

__all__ = [
    "REFERENCE_FPRS",
    "ReferenceThresholds",
    "StoredModel",
    "Verdict",
    "evaluation_summary",
    "image_by_id",
    "image_history",
    "images_in_set",
    "imagesets_overview",
    "reference_real_count",
    "reference_thresholds",
    "store_model_ids",
    "stored_models",
    "verdict",
]

REFERENCE_FPRS = (0.01, 0.05)  # strict and loose false-positive rates behind the verdict bands
DEFAULT_THRESHOLD = DECISION_THRESHOLD  # used without a reference run (robustness.metrics)
MIN_REFERENCE_REALS = 20  # fewer real scores than this give no verdict bands at all
STUDY_SPAI_MODEL = "SPAI (official weights, study)"  # scores made with the official weights


@dataclass(frozen=True)
class StoredModel:
    id: int
    name: str
    origin: str
    path: str | None
    sha256: str | None
    n_runs: int
    n_predictions: int


@dataclass(frozen=True)
class ReferenceThresholds:
    """Thresholds from real images scored by the model; ``by_fpr[fpr]`` = score threshold
    (+inf where ``n_real`` reals are too few to measure that FPR: fewer than 1 / fpr)."""

    by_fpr: dict[float, float]
    n_real: int
    sources: tuple[str, ...]  # "model / image set" of each reference run, or the shipped file
    model_names: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Verdict:
    label: str  # likely real | inconclusive | likely AI-generated
    meaning: str  # one sentence a user can act on
    calibrated: bool  # False when no reference run backed the thresholds


# --- store: models ----------------------------------------------------------------------------


def stored_models(session: Session) -> list[StoredModel]:
    """Every model in the store with its run and prediction counts (one grouped SELECT)."""
    n_runs = func.count(func.distinct(Run.id))
    stmt = (
        select(Model.id, Model.name, Model.origin, Model.path, Model.sha256, n_runs,
               func.count(Prediction.id))
        .outerjoin(Run, Run.model_id == Model.id)
        .outerjoin(Prediction, Prediction.run_id == Run.id)
        .group_by(Model.id, Model.name, Model.origin, Model.path, Model.sha256)
        .order_by(Model.id)
    )
    return [StoredModel(*row) for row in session.execute(stmt).all()]


def store_model_ids(session: Session, *, sha256: str, origin: str) -> list[int]:
    """Store models whose scores came from these weights: same sha256, plus the study's SPAI
    scores when the weights are the official ones."""
    cond = Model.sha256 == sha256
    if origin == OFFICIAL:
        cond = or_(cond, Model.name == STUDY_SPAI_MODEL)
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
        rows.append({
            "condition": cond, "n_real": int((y == 0).sum()), "n_fake": int(y.sum()),
            "auc": auc(y, s) if both else np.nan, "ap": ap(y, s) if both else np.nan,
            "mean_score_real": float(s[y == 0].mean()) if (y == 0).any() else np.nan,
            "mean_score_fake": float(s[y == 1].mean()) if y.any() else np.nan,
        })
    cols = ["condition", "n_real", "n_fake", "auc", "ap", "mean_score_real", "mean_score_fake"]
    out = pd.DataFrame(rows, columns=cols)
    if len(out):  # the unmodified images first
        out = out.sort_values("condition", key=lambda c: c != ORIGINAL, kind="stable")
    return out.reset_index(drop=True)


# --- verdict bands ----------------------------------------------------------------------------


def _reference_filter(model_ids: list[int]) -> tuple:
    return (Run.model_id.in_(model_ids), Run.condition_id == ORIGINAL, ImageSet.kind == "real",
            Prediction.score.is_not(None))


def reference_real_count(session: Session, model_ids: list[int]) -> int:
    """Real images the models scored unmodified (what the verdict bands are measured on)."""
    if not model_ids:
        return 0
    stmt = (select(func.count(Prediction.id)).select_from(Prediction)
            .join(Run, Run.id == Prediction.run_id)
            .join(ImageSet, ImageSet.id == Run.imageset_id)
            .where(*_reference_filter(model_ids)))
    return int(session.scalar(stmt) or 0)


def reference_thresholds(
    session: Session, model_ids: list[int], fprs: tuple[float, ...] = REFERENCE_FPRS
) -> ReferenceThresholds | None:
    """Thresholds at each FPR from the models' unmodified real-set runs; None when there are
    fewer than ``MIN_REFERENCE_REALS`` real scores (``reference_real_count`` says how many)."""
    if not model_ids:
        return None
    stmt = (
        select(Model.name, ImageSet.name, Prediction.score)
        .select_from(Prediction)
        .join(Run, Run.id == Prediction.run_id)
        .join(ImageSet, ImageSet.id == Run.imageset_id)
        .join(Model, Model.id == Run.model_id)
        .where(*_reference_filter(model_ids))
    )
    rows = session.execute(stmt).all()
    if len(rows) < MIN_REFERENCE_REALS:
        return None
    scores = np.fromiter((r[2] for r in rows), dtype=np.float64, count=len(rows))
    sources = tuple(sorted({f"{m} / {s}" for m, s, _ in rows}))
    return ReferenceThresholds(
        by_fpr={f: threshold_at_fpr(scores, fpr=f) for f in fprs}, n_real=len(rows),
        sources=sources, model_names=tuple(sorted({r[0] for r in rows})),
    )


def verdict(score: float, ref: ReferenceThresholds | None) -> Verdict:
    """Band a score: above the strict (lowest-FPR) threshold -> likely AI-generated, below the
    loose one -> likely real, between -> inconclusive. Without a reference: the 0.5 rule."""
    if ref is None:
        fake = bool(predict_fake([score], threshold=DEFAULT_THRESHOLD)[0])
        return Verdict(
            "likely AI-generated" if fake else "likely real",
            f"score {'above' if fake else 'at or below'} the model's 0.5 decision threshold; "
            "no reference run of this model on real images exists, so the false-positive "
            "rate of this call is unknown",
            calibrated=False,
        )
    strict_fpr, loose_fpr = min(ref.by_fpr), max(ref.by_fpr)
    strict, loose = ref.by_fpr[strict_fpr], ref.by_fpr[loose_fpr]
    if np.isinf(strict) and score >= loose:
        return Verdict("inconclusive",
                       f"above the {loose_fpr:.0%}-FPR threshold ({loose:.3f}); a "
                       f"{strict_fpr:.1%}-FPR threshold needs at least "
                       f"{min_reals_for_fpr(strict_fpr)} real reference images "
                       f"({ref.n_real} here), so no call of "
                       "AI-generated is made at that rate", calibrated=True)
    if score >= strict:
        return Verdict("likely AI-generated",
                       f"at most {strict_fpr:.0%} of the {ref.n_real} real reference images "
                       f"score this high (threshold {strict:.3f})", calibrated=True)
    if score < loose:
        return Verdict("likely real",
                       f"more than {loose_fpr:.0%} of the {ref.n_real} real reference images "
                       f"score at least this high (threshold {loose:.3f})", calibrated=True)
    return Verdict("inconclusive",
                   f"between the {loose_fpr:.0%}-FPR threshold ({loose:.3f}) and the "
                   f"{strict_fpr:.0%}-FPR threshold ({strict:.3f}) of the real reference images",
                   calibrated=True)


# --- images -----------------------------------------------------------------------------------


def imagesets_overview(session: Session) -> list[tuple[int, str, str, int, int]]:
    """(id, name, kind, images, images with a file) for every image set, by name."""
    n_files = func.count(Image.id).filter(Image.has_file.is_(True), ImageSet.root.is_not(None))
    stmt = (
        select(ImageSet.id, ImageSet.name, ImageSet.kind, func.count(Image.id), n_files)
        .outerjoin(Image, Image.imageset_id == ImageSet.id)
        .group_by(ImageSet.id, ImageSet.name, ImageSet.kind)
        .order_by(ImageSet.name)
    )
    return [tuple(r) for r in session.execute(stmt).all()]


def images_in_set(
    session: Session, imageset_id: int, *, limit: int = 500
) -> list[tuple[int, str, bool]]:
    """(image id, relpath, has a readable file) of a set's images, in path order."""
    stmt = (
        select(Image.id, Image.relpath, Image.has_file & Image.error.is_(None))
        .where(Image.imageset_id == imageset_id)
        .order_by(Image.relpath).limit(limit)
    )
    return [(i, r, bool(f)) for i, r, f in session.execute(stmt).all()]


def image_by_id(session: Session, image_id: int) -> tuple[Path, str | None]:
    """The file of a stored image and its sha256; ``KeyError`` / ``FileNotFoundError`` /
    ``PermissionError`` (a path leading out of the set's root) with the reason otherwise."""
    row = session.execute(
        select(Image.relpath, Image.sha256, Image.has_file, ImageSet.root)
        .join(ImageSet, ImageSet.id == Image.imageset_id).where(Image.id == image_id)
    ).one_or_none()
    if row is None:
        raise KeyError(f"no image with id {image_id}")
    relpath, sha, has_file, root = row
    if not has_file or root is None:
        raise FileNotFoundError(f"image {image_id} ({relpath}) was imported without its file")
    try:  # checked at read time: a symlink planted after registration may lead out
        return resolve_inside(Path(root), relpath), sha
    except ValueError as exc:
        raise PermissionError(f"image {image_id}: {exc}") from None


def image_history(
    session: Session, *, sha256: str | None = None, image_id: int | None = None
) -> pd.DataFrame:
    """Every stored score of an image (matched by id, or by content hash across sets): model,
    image set, condition, score, error, run id, sorted by model then condition."""
    if sha256 is None and image_id is None:
        raise ValueError("image_history needs sha256 or image_id")
    match = Image.id == image_id if image_id is not None else Image.sha256 == sha256
    if image_id is not None and sha256 is not None:
        match = or_(Image.id == image_id, Image.sha256 == sha256)
    stmt = (
        select(Model.name.label("model"), ImageSet.name.label("image_set"),
               Run.condition_id.label("condition"), Prediction.score, Prediction.error,
               Run.id.label("run_id"), Image.relpath.label("image"))
        .select_from(Prediction)
        .join(Image, Image.id == Prediction.image_id)
        .join(Run, Run.id == Prediction.run_id)
        .join(ImageSet, ImageSet.id == Run.imageset_id)
        .join(Model, Model.id == Run.model_id)
        .where(match)
        .order_by(Model.name, Run.condition_id, ImageSet.name)
    )
    return pd.DataFrame(session.execute(stmt).all(), columns=list(stmt.selected_columns.keys()))
