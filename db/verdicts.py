"""Verdict bands: thresholds measured on the real images a model scored in the store, and the
band a score falls in (the Score page). Reads take a session and never commit.

    with session_scope(readonly=True) as s:
        ref = reference_thresholds(s, store_model_ids(s, sha256=info.sha256, origin=info.origin))
    verdict(0.93, ref).label        # "likely AI-generated"

Thresholds at a false-positive rate follow ``robustness.metrics.threshold_at_fpr``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import ORIGINAL, ImageSet, Model, Prediction, Run
from robustness.metrics import (
    DECISION_THRESHOLD,
    min_reals_for_fpr,
    predict_fake,
    threshold_at_fpr,
)

__all__ = [
    "DEFAULT_THRESHOLD",
    "MIN_REFERENCE_REALS",
    "REFERENCE_FPRS",
    "ReferenceThresholds",
    "Verdict",
    "reference_real_count",
    "reference_thresholds",
    "verdict",
]

REFERENCE_FPRS = (0.01, 0.05)  # strict and loose false-positive rates behind the verdict bands
DEFAULT_THRESHOLD = DECISION_THRESHOLD  # used without a reference run (robustness.metrics)
MIN_REFERENCE_REALS = 20  # fewer real scores than this give no verdict bands at all


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


def _reference_filter(model_ids: list[int]) -> tuple:
    return (
        Run.model_id.in_(model_ids),
        Run.condition_id == ORIGINAL,
        ImageSet.kind == "real",
        Prediction.score.is_not(None),
    )


def reference_real_count(session: Session, model_ids: list[int]) -> int:
    """Real images the models scored unmodified (what the verdict bands are measured on)."""
    if not model_ids:
        return 0
    stmt = (
        select(func.count(Prediction.id))
        .select_from(Prediction)
        .join(Run, Run.id == Prediction.run_id)
        .join(ImageSet, ImageSet.id == Run.imageset_id)
        .where(*_reference_filter(model_ids))
    )
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
        by_fpr={f: threshold_at_fpr(scores, fpr=f) for f in fprs},
        n_real=len(rows),
        sources=sources,
        model_names=tuple(sorted({r[0] for r in rows})),
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
        return Verdict(
            "inconclusive",
            f"above the {loose_fpr:.0%}-FPR threshold ({loose:.3f}); a "
            f"{strict_fpr:.1%}-FPR threshold needs at least "
            f"{min_reals_for_fpr(strict_fpr)} real reference images "
            f"({ref.n_real} here), so no call of "
            "AI-generated is made at that rate",
            calibrated=True,
        )
    if score >= strict:
        return Verdict(
            "likely AI-generated",
            f"at most {strict_fpr:.0%} of the {ref.n_real} real reference images "
            f"score this high (threshold {strict:.3f})",
            calibrated=True,
        )
    if score < loose:
        return Verdict(
            "likely real",
            f"more than {loose_fpr:.0%} of the {ref.n_real} real reference images "
            f"score at least this high (threshold {loose:.3f})",
            calibrated=True,
        )
    return Verdict(
        "inconclusive",
        f"between the {loose_fpr:.0%}-FPR threshold ({loose:.3f}) and the "
        f"{strict_fpr:.0%}-FPR threshold ({strict:.3f}) of the real reference images",
        calibrated=True,
    )
