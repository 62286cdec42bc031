"""One image of the store: the image sets to pick from, a set's images, an image's file (checked
to stay inside its set's root) and every stored score of it (the Inspect page). Reads take a
session and never commit.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from db.imagesets import resolve_inside
from db.models import Image, ImageSet, Model, Prediction, Run

__all__ = ["image_by_id", "image_history", "images_in_set", "imagesets_overview"]


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


def images_in_set(session: Session, imageset_id: int, *, limit: int = 500) -> list[tuple[int, str, bool]]:
    """(image id, relpath, has a readable file) of a set's images, in path order."""
    stmt = (
        select(Image.id, Image.relpath, Image.has_file & Image.error.is_(None))
        .where(Image.imageset_id == imageset_id)
        .order_by(Image.relpath)
        .limit(limit)
    )
    return [(i, r, bool(f)) for i, r, f in session.execute(stmt).all()]


def image_by_id(session: Session, image_id: int) -> tuple[Path, str | None]:
    """The file of a stored image and its sha256; ``KeyError`` / ``FileNotFoundError`` /
    ``PermissionError`` (a path leading out of the set's root) with the reason otherwise."""
    row = session.execute(
        select(Image.relpath, Image.sha256, Image.has_file, ImageSet.root)
        .join(ImageSet, ImageSet.id == Image.imageset_id)
        .where(Image.id == image_id)
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


def image_history(session: Session, *, sha256: str | None = None, image_id: int | None = None) -> pd.DataFrame:
    """Every stored score of an image (matched by id, or by content hash across sets): model,
    image set, condition, score, error, run id, sorted by model then condition."""
    if sha256 is None and image_id is None:
        raise ValueError("image_history needs sha256 or image_id")
    match = Image.id == image_id if image_id is not None else Image.sha256 == sha256
    if image_id is not None and sha256 is not None:
        match = or_(Image.id == image_id, Image.sha256 == sha256)
    stmt = (
        select(
            Model.name.label("model"),
            ImageSet.name.label("image_set"),
            Run.condition_id.label("condition"),
            Prediction.score,
            Prediction.error,
            Run.id.label("run_id"),
            Image.relpath.label("image"),
        )
        .select_from(Prediction)
        .join(Image, Image.id == Prediction.image_id)
        .join(Run, Run.id == Prediction.run_id)
        .join(ImageSet, ImageSet.id == Run.imageset_id)
        .join(Model, Model.id == Run.model_id)
        .where(match)
        .order_by(Model.name, Run.condition_id, ImageSet.name)
    )
    return pd.DataFrame(session.execute(stmt).all(), columns=list(stmt.selected_columns.keys()))
