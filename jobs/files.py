"""Where a job reads and writes image files: originals checked inside their set's root,
derived files under the data directory, stored paths relative to the repository."""

from __future__ import annotations

from pathlib import Path

from db.imagesets import resolve_inside
from db.models import Image, ImageSet
from db.paths import data_dir, join_inside, slug
from db.session import REPO_ROOT

NO_FILE_ERROR = "image file not available (predictions were imported without images)"


def derived_stem(imageset_id: int, imageset: str, condition_id: str, relpath: str) -> Path:
    """``data/derived/<id>-<set name as a slug>/<condition id, '/' -> '__'>/<relpath without
    extension>``; ``PathNotAllowed`` for a relpath with ``..`` or an absolute one."""
    try:
        folder = f"{imageset_id}-{slug(imageset)}"
    except ValueError:  # a name without letters or digits
        folder = str(imageset_id)
    base = data_dir() / "derived" / folder / condition_id.replace("/", "__")
    return join_inside(base, relpath).with_suffix("")


def image_file(iset: ImageSet, im: Image) -> tuple[Path | None, str | None]:
    """The file of a stored image, checked at read time to lie inside its set's root (a
    symlink planted after registration is refused), or None and the reason."""
    if not im.has_file or iset.root is None:
        return None, NO_FILE_ERROR
    if im.error:
        return None, im.error
    try:
        return resolve_inside(Path(iset.root), im.relpath), None
    except ValueError as exc:
        return None, str(exc)


def stored(path: str | Path) -> str:
    """How a written file's path is stored: relative to the repository when inside it."""
    path = Path(path).resolve()
    return path.relative_to(REPO_ROOT).as_posix() if path.is_relative_to(REPO_ROOT) else str(path)


def resolve_stored(path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else REPO_ROOT / p
