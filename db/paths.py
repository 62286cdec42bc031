"""Where names and paths typed into the dashboard may lead.

- ``data_dir()``: where the server writes (derived images, training runs, the worker log).
- ``slug(name)``: a name made safe to be one path component (training run folders).
- ``data_roots()``: the folders a visitor may register images or read CSVs, configs and
  checkpoints from: ``SPAI_DATA_ROOTS`` (folders separated by ``os.pathsep``), set by whoever
  runs the server; by default the data directory and the repository's ``examples/``,
  ``robustness/study/`` (the shipped study and its study file) and ``tests/fixtures/`` (small
  sample images).
- ``require_inside_roots(path)``: the resolved path (symlinks followed) when it lies in one of
  them, else ``PathNotAllowed``.
- ``join_inside(base, relpath)``: ``base / relpath`` for a stored relative path, refusing
  absolute paths and ``..`` (used for files the server writes).
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath

from db.session import REPO_ROOT

__all__ = ["ENV_ROOTS", "PathNotAllowed", "data_dir", "data_roots", "join_inside", "require_inside_roots", "slug"]

ENV_ROOTS = "SPAI_DATA_ROOTS"
SLUG_MAX = 80  # characters of a slug


class PathNotAllowed(ValueError):
    """A path outside the folders this server lets visitors use."""


def data_dir() -> Path:
    """Where derived files go: ``SPAI_DATA_DIR`` or ``<repo>/data``."""
    return Path(os.environ.get("SPAI_DATA_DIR") or REPO_ROOT / "data")


def slug(name: str) -> str:
    """``name`` as one safe path component: letters, digits, ``.``, ``_``, ``-`` kept, runs of
    anything else become ``-``; no leading dot; ``ValueError`` when nothing is left."""
    out = re.sub(r"[^A-Za-z0-9._-]+", "-", name.strip()).strip("-.")[:SLUG_MAX].strip("-.")
    if not out:
        raise ValueError(f"{name!r} has no letters or digits to name a folder with")
    return out


def data_roots() -> tuple[Path, ...]:
    """The allowed folders, resolved (see the module docstring)."""
    configured = os.environ.get(ENV_ROOTS)
    if configured is not None and configured.strip():
        roots = [Path(p).expanduser() for p in configured.split(os.pathsep) if p.strip()]
    else:
        roots = [
            data_dir(),
            REPO_ROOT / "examples",
            REPO_ROOT / "robustness" / "study",
            REPO_ROOT / "tests" / "fixtures",
        ]
    return tuple(dict.fromkeys(r.resolve() for r in roots))


def require_inside_roots(path: str | os.PathLike, what: str = "path", *, extra: tuple[Path, ...] = ()) -> Path:
    """The resolved ``path`` if it is inside an allowed root (or one of ``extra``, e.g. the
    repository's configs), else ``PathNotAllowed``."""
    resolved = Path(path).expanduser().resolve()
    roots = data_roots() + tuple(r.resolve() for r in extra)
    if any(resolved == r or resolved.is_relative_to(r) for r in roots):
        return resolved
    listed = os.pathsep.join(str(r) for r in roots)
    raise PathNotAllowed(
        f"{what} {str(path)!r} is outside the folders this server allows ({listed}); "
        f"the administrator lists them in {ENV_ROOTS}"
    )


def join_inside(base: Path, relpath: str) -> Path:
    """``base / relpath`` for a relative path without ``..`` (checked on the text, so a path
    the server writes cannot leave ``base`` whatever exists on disk)."""
    parts = PurePosixPath(relpath.replace("\\", "/")).parts
    if not parts or parts[0] == "/" or ".." in parts:
        raise PathNotAllowed(f"not a relative path inside {base}: {relpath!r}")
    return base.joinpath(*parts)
