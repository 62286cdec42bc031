"""The images behind one comparison cell (model x image set x condition), worst misses first.

For a fake set a miss is a low score, so rows sort by ascending score; for a real set a miss is a
high score, so rows sort by descending score. Each row says where its file is (the derived file
under the condition, or the original) or why there is none, so images imported without files
still show as paths.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from db.models import ORIGINAL, DerivedImage, Image, ImageSet, Prediction, Run
from db.session import REPO_ROOT

CELL_LIMIT = 200  # rows returned by default (the page shows the worst first)
COLUMNS = ["image_id", "relpath", "score", "error", "file", "has_file"]


def _resolve(path: str | None, root: str | None) -> str | None:
    if not path:
        return None
    p = Path(path)
    if not p.is_absolute():
        p = Path(root) / p if root else REPO_ROOT / p
    return str(p)


def cell_images(
    session: Session,
    *,
    model_id: int,
    imageset_id: int,
    condition_id: str,
    limit: int | None = CELL_LIMIT,
) -> pd.DataFrame:
    """Predictions of the run (model, set, condition), worst misses first (one SELECT).

    Columns: image_id, relpath, score, error, file (absolute path or None), has_file (the file
    exists on this machine). Errors (no score) come last.
    """
    iset = session.get(ImageSet, imageset_id)
    if iset is None:
        raise KeyError(f"no image set with id {imageset_id}")
    order = Prediction.score.asc() if iset.kind == "fake" else Prediction.score.desc()
    derived = and_(DerivedImage.image_id == Image.id, DerivedImage.condition_id == condition_id)
    stmt = (
        select(
            Prediction.image_id, Image.relpath, Prediction.score, Prediction.error, DerivedImage.path, Image.has_file
        )
        .join(Run, Run.id == Prediction.run_id)
        .join(Image, Image.id == Prediction.image_id)
        .outerjoin(DerivedImage, derived)
        .where(Run.model_id == model_id, Run.imageset_id == imageset_id, Run.condition_id == condition_id)
        .order_by(Prediction.score.is_(None), order, Prediction.image_id)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    rows = []
    for image_id, relpath, score, error, dpath, has_file in session.execute(stmt):
        if condition_id == ORIGINAL:
            file = _resolve(relpath, iset.root) if has_file and iset.root else None
            shown = relpath
        else:
            file = _resolve(dpath, None) if dpath else None
            shown = dpath or relpath
        rows.append((image_id, shown, score, error, file, bool(file and Path(file).is_file())))
    return pd.DataFrame(rows, columns=COLUMNS)
