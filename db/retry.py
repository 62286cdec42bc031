"""Redo a job's error rows: forget error predictions and failed derived files so the requeued
job computes them again (a disk that was full, a file still being copied).

An error's *kind* is its text up to the first colon ("cannot derive", "unreadable image",
"image file not available ..."); ``redo_errors(..., kind=...)`` redoes only that kind. Images
whose registration recorded an error are inspected again, so a file that was still being
copied is read afresh.

Example::

    with session_scope() as s:
        kinds = error_kinds(s, job_id)          # {"cannot derive": 3, "unreadable image": 1}
        redo_errors(s, job_id, kind="cannot derive")
        jobs.requeue(s, job_id, allow_done=True)
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from db.imagesets import inspect_image, resolve_inside
from db.models import ORIGINAL, DerivedImage, Image, ImageSet, Job, Prediction, Run

__all__ = ["error_kind", "error_kinds", "redo_errors"]


def error_kind(error: str) -> str:
    """The kind of an error message: its text before the first colon."""
    return error.split(":", 1)[0].strip()


def _targets(session: Session, job_id: int) -> tuple[list[int], int | None, str]:
    """(run ids, image set id, condition) whose rows the job wrote."""
    job = session.get(Job, job_id)
    if job is None:
        raise KeyError(f"no job with id {job_id}")
    p = job.params or {}
    if job.kind not in ("infer", "make-condition") or p.get("imageset_id") is None:
        return [], None, ORIGINAL
    imageset_id, cond = int(p["imageset_id"]), str(p.get("condition_id") or ORIGINAL)
    runs = []
    if job.kind == "infer":
        runs = list(
            session.scalars(
                select(Run.id).where(
                    Run.model_id == p.get("model_id"), Run.imageset_id == imageset_id, Run.condition_id == cond
                )
            )
        )
    return runs, imageset_id, cond


def _errors(session: Session, job_id: int) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """The job's error predictions and error derived rows as (row id, error)."""
    runs, imageset_id, cond = _targets(session, job_id)
    preds = (
        list(
            session.execute(
                select(Prediction.id, Prediction.error).where(
                    Prediction.run_id.in_(runs), Prediction.error.is_not(None)
                )
            ).all()
        )
        if runs
        else []
    )
    derived = []
    if imageset_id is not None and cond != ORIGINAL:
        derived = list(
            session.execute(
                select(DerivedImage.id, DerivedImage.error)
                .join(Image, Image.id == DerivedImage.image_id)
                .where(
                    Image.imageset_id == imageset_id, DerivedImage.condition_id == cond, DerivedImage.error.is_not(None)
                )
            ).all()
        )
    return preds, derived


def error_kinds(session: Session, job_id: int) -> dict[str, int]:
    """How many error rows of each kind the job left (predictions and derived files)."""
    preds, derived = _errors(session, job_id)
    return dict(Counter(error_kind(e) for _, e in preds + derived).most_common())


def redo_errors(session: Session, job_id: int, *, kind: str | None = None) -> int:
    """Forget the job's error rows (only those of ``kind`` when given) so that running it again
    recomputes them; returns how many rows were forgotten."""
    preds, derived = _errors(session, job_id)
    pick = [i for i, e in preds if kind is None or error_kind(e) == kind]
    pick_derived = [i for i, e in derived if kind is None or error_kind(e) == kind]
    _reinspect(session, job_id, pick)
    if pick:
        session.execute(delete(Prediction).where(Prediction.id.in_(pick)))
    if pick_derived:
        session.execute(delete(DerivedImage).where(DerivedImage.id.in_(pick_derived)))
    return len(pick) + len(pick_derived)


def _reinspect(session: Session, job_id: int, prediction_ids: list[int]) -> None:
    """Read again the files of registered images with an error behind these predictions."""
    if not prediction_ids:
        return
    rows = session.execute(
        select(Image.id, Image.relpath, ImageSet.root)
        .join(Prediction, Prediction.image_id == Image.id)
        .join(ImageSet, ImageSet.id == Image.imageset_id)
        .where(
            Prediction.id.in_(prediction_ids),
            Image.error.is_not(None),
            Image.has_file.is_(True),
            ImageSet.root.is_not(None),
        )
    ).all()
    for image_id, relpath, root in rows:
        try:  # read again only inside the set's root (symlinks followed, then checked)
            path = resolve_inside(Path(root), relpath)
        except ValueError:
            continue
        if not path.is_file():
            continue
        facts = inspect_image(path)
        session.execute(
            update(Image)
            .where(Image.id == image_id)
            .values(sha256=facts.sha256, width=facts.width, height=facts.height, format=facts.format, error=facts.error)
        )
