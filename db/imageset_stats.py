"""Read helpers for the Image sets and Jobs pages (take a session, never commit).

``overview`` aggregates in SQL: one grouped SELECT for counts and sizes per set, one for formats.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from db.models import DerivedImage, Image, ImageSet, Model

OVERVIEW_COLUMNS = [
    "id",
    "name",
    "kind",
    "generator",
    "origin",
    "root",
    "images",
    "with_file",
    "errors",
    "min_size",
    "max_size",
    "formats",
    "conditions",
    "owner",
]


def overview(session: Session) -> pd.DataFrame:
    """One row per image set: counts, pixel-size range, formats, derived conditions, owner
    (``db.owners``; None without sign-in)."""
    n_err = func.sum(case((Image.error.is_not(None), 1), else_=0))
    n_file = func.sum(case((Image.has_file.is_(True), 1), else_=0))
    px = Image.width * Image.height
    stmt = (
        select(
            ImageSet.id,
            ImageSet.name,
            ImageSet.kind,
            ImageSet.generator,
            ImageSet.origin,
            ImageSet.root,
            func.count(Image.id),
            n_file,
            n_err,
            func.min(px),
            func.max(px),
            ImageSet.owner,
        )
        .outerjoin(Image, Image.imageset_id == ImageSet.id)
        .group_by(ImageSet.id)
        .order_by(ImageSet.name)
    )
    rows = session.execute(stmt).all()
    fmts: dict[int, list[str]] = {}
    for sid, fmt, n in session.execute(
        select(Image.imageset_id, Image.format, func.count())
        .where(Image.format.is_not(None))
        .group_by(Image.imageset_id, Image.format)
    ):
        fmts.setdefault(sid, []).append(f"{fmt} ({n})")
    conds: dict[int, list[str]] = {}
    for sid, cond in session.execute(
        select(Image.imageset_id, DerivedImage.condition_id)
        .distinct()
        .join(DerivedImage, DerivedImage.image_id == Image.id)
    ):
        conds.setdefault(sid, []).append(cond)
    out = []
    for sid, name, kind, gen, origin, root, n, nf, ne, lo, hi, owner in rows:
        out.append(
            (
                sid,
                name,
                kind,
                gen,
                origin,
                root,
                n,
                int(nf or 0),
                int(ne or 0),
                _mp(lo),
                _mp(hi),
                ", ".join(sorted(fmts.get(sid, []))),
                ", ".join(sorted(conds.get(sid, []))),
                owner,
            )
        )
    return pd.DataFrame(out, columns=OVERVIEW_COLUMNS)


def _mp(pixels: int | None) -> str:
    return "" if pixels is None else f"{pixels / 1e6:.2f} MP"


def images(session: Session, imageset_id: int, *, errors_only: bool = False, limit: int = 500) -> pd.DataFrame:
    """Images of a set (relpath, file path, size, format, error), in id order."""
    iset = session.get(ImageSet, imageset_id)
    if iset is None:
        raise KeyError(f"no image set with id {imageset_id}")
    stmt = (
        select(Image.id, Image.relpath, Image.width, Image.height, Image.format, Image.has_file, Image.error)
        .where(Image.imageset_id == imageset_id)
        .order_by(Image.id)
        .limit(limit)
    )
    if errors_only:
        stmt = stmt.where(Image.error.is_not(None))
    frame = pd.DataFrame(
        session.execute(stmt).all(), columns=["id", "relpath", "width", "height", "format", "has_file", "error"]
    )
    frame["file"] = [
        str(Path(iset.root) / r) if iset.root and f else None for r, f in zip(frame["relpath"], frame["has_file"])
    ]
    return frame


def runnable_models(session: Session) -> pd.DataFrame:
    """Models with a weights file (those that can run inference): id, name, origin, path."""
    rows = session.execute(
        select(Model.id, Model.name, Model.origin, Model.path).where(Model.path.is_not(None)).order_by(Model.name)
    ).all()
    return pd.DataFrame(rows, columns=["id", "name", "origin", "path"])
