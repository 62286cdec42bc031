"""Register image sets from a folder or from an official ``image,class,split`` CSV.

A folder whose subfolders name the labels (``real/`` and ``fake/``, ``0_real/`` and ``1_fake/``,
or ``nature/`` and ``ai/``; any case) becomes two sets in one step, ``<name>-real`` and
``<name>-fake`` (``register_labelled_folder``); any other folder takes one label given explicitly
(``register_folder``).

Every image is hashed once (sha256) and its header decoded for width, height and format. Rows
that cannot be registered (a path escaping the root, a missing file) are reported per row and
skipped; an unreadable image is registered with its ``error`` set (so inference records an error
prediction for it) and reported too. Nothing stops the rest of the set.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import IMAGESET_KINDS, Image, ImageSet, utcnow
from db.queries import insert_ignore
from core.imageio import ImageLoadError, open_image
from core.limits import DEFAULT_MAX_PIXELS

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif")
HASH_CHUNK = 1 << 20
REGISTER_BATCH = 64  # images inserted (and committed, by a checkpoint) per batch
Checkpoint = Callable[[int], None]  # called between batches with the items handled since
# Subfolder names (lower case) that label their images, as (real, fake) pairs: the common layouts
# of detector datasets (plain, CNNDetection's 0_real/1_fake, GenImage's nature/ai).
LABEL_LAYOUTS: tuple[tuple[str, str], ...] = (("real", "fake"), ("0_real", "1_fake"), ("nature", "ai"))


@dataclass(frozen=True)
class RowProblem:
    row: int | None  # 1-based data row in a CSV; None for folder scans
    path: str
    reason: str


@dataclass
class RegistrationReport:
    imageset_ids: dict[str, int] = field(default_factory=dict)  # set name -> id
    added: int = 0
    already_present: int = 0
    problems: list[RowProblem] = field(default_factory=list)


@dataclass(frozen=True)
class ImageFacts:
    sha256: str
    width: int | None
    height: int | None
    format: str | None
    error: str | None


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def inspect_image(path: Path, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> ImageFacts:
    """Hash the file and decode it fully once (through the capped decoder, so an image over
    ``max_pixels`` is refused from its header); a failure is returned as ``error``."""
    digest = sha256_file(path)
    try:
        im = open_image(path, max_pixels)
        return ImageFacts(digest, im.width, im.height, im.format, None)
    except ImageLoadError as exc:
        return ImageFacts(digest, None, None, None, f"unreadable image: {exc}")


def resolve_inside(root: Path, relpath: str) -> Path:
    """``root / relpath``, or ``ValueError`` when the path is absolute or escapes ``root``."""
    if not relpath or Path(relpath).is_absolute():
        raise ValueError(f"path must be relative to the root: {relpath!r}")
    full = (root / relpath).resolve()
    if not full.is_relative_to(root.resolve()):
        raise ValueError(f"path escapes the root folder {str(root)!r}: {relpath!r}")
    return full


def ensure_imageset(
    session: Session,
    name: str,
    *,
    kind: str,
    root: str | None,
    origin: str,
    generator: str | None = None,
    owner: str | None = None,
) -> ImageSet:
    """Return the image set ``name``, creating it (for ``owner``); an existing one must have
    the same kind."""
    if kind not in IMAGESET_KINDS:
        raise ValueError(f"image set kind must be one of {IMAGESET_KINDS}, got {kind!r}")
    insert_ignore(
        session,
        ImageSet.__table__,
        [
            {
                "name": name,
                "kind": kind,
                "root": root,
                "origin": origin,
                "generator": generator,
                "created_at": utcnow(),
                "owner": owner,
            }
        ],
    )
    found = session.scalars(select(ImageSet).where(ImageSet.name == name)).one()
    if found.kind != kind:
        raise ValueError(f"image set {name!r} already exists with kind {found.kind!r}, not {kind!r}")
    return found


def _register_paths(
    session: Session,
    imageset: ImageSet,
    root: Path,
    items: list[tuple[int | None, str]],
    report: RegistrationReport,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    checkpoint: Checkpoint | None = None,
) -> None:
    """Inspect and insert the items; with ``checkpoint``, rows are inserted in batches of
    ``REGISTER_BATCH`` and ``checkpoint(n)`` is called before the files are read and after
    each batch (``n`` items handled since the last call)."""
    known = set(session.scalars(select(Image.relpath).where(Image.imageset_id == imageset.id)))
    report.imageset_ids[imageset.name] = imageset.id
    if checkpoint is not None:
        checkpoint(0)  # e.g. commit: no lock is held while files are read
    rows, handled = [], 0
    for row, rel in items:
        if checkpoint is not None and handled >= REGISTER_BATCH:
            report.added += insert_ignore(session, Image.__table__, rows)
            checkpoint(handled)
            rows, handled = [], 0
        handled += 1
        rel = rel.strip().replace("\\", "/")
        if rel in known:
            report.already_present += 1
            continue
        try:
            full = resolve_inside(root, rel)
        except ValueError as exc:
            report.problems.append(RowProblem(row, rel, str(exc)))
            continue
        if not full.is_file():
            report.problems.append(RowProblem(row, rel, f"file not found: {full}"))
            continue
        facts = inspect_image(full, max_pixels)
        if facts.error:
            report.problems.append(RowProblem(row, rel, facts.error))
        known.add(rel)
        rows.append(
            {
                "imageset_id": imageset.id,
                "relpath": rel,
                "sha256": facts.sha256,
                "width": facts.width,
                "height": facts.height,
                "format": facts.format,
                "has_file": True,
                "error": facts.error,
            }
        )
    report.added += insert_ignore(session, Image.__table__, rows)
    if checkpoint is not None:
        checkpoint(handled)


def register_folder(
    session: Session,
    folder: str | Path,
    *,
    name: str,
    kind: str,
    generator: str | None = None,
    recursive: bool = True,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    checkpoint: Checkpoint | None = None,
    owner: str | None = None,
) -> RegistrationReport:
    """Register every image file under ``folder`` as the set ``name`` with label ``kind``
    (``checkpoint`` as in ``_register_paths``; a new set is ``owner``'s)."""
    root = Path(folder).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {root}")
    imageset = ensure_imageset(
        session, name, kind=kind, root=str(root), origin="folder", generator=generator, owner=owner
    )
    files = image_files(root, recursive=recursive)
    report = RegistrationReport()
    _register_paths(
        session,
        imageset,
        root,
        [(None, p.relative_to(root).as_posix()) for p in files],
        report,
        max_pixels,
        checkpoint=checkpoint,
    )
    return report


def label_layout(folder: str | Path) -> dict[str, Path] | None:
    """The label subfolders of ``folder`` as {"real": path, "fake": path}, or None when it has
    no such layout (see ``LABEL_LAYOUTS``; names match in any case)."""
    root = Path(folder)
    if not root.is_dir():
        return None
    subdirs = {p.name.lower(): p for p in sorted(root.iterdir()) if p.is_dir()}
    for real, fake in LABEL_LAYOUTS:
        if real in subdirs and fake in subdirs:
            return {"real": subdirs[real], "fake": subdirs[fake]}
    return None


def image_files(folder: Path, *, recursive: bool = True) -> list[Path]:
    """Image files under ``folder`` (by suffix), sorted."""
    pattern = folder.rglob("*") if recursive else folder.glob("*")
    return sorted(p for p in pattern if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def register_labelled_folder(
    session: Session,
    folder: str | Path,
    *,
    name: str,
    generator: str | None = None,
    checkpoint: Checkpoint | None = None,
    owner: str | None = None,
) -> RegistrationReport:
    """Register a folder with label subfolders (``label_layout``) as ``<name>-real`` and
    ``<name>-fake``, each rooted at its subfolder. Images outside the two subfolders are
    reported, not registered. ``ValueError`` when the folder has no such layout."""
    root = Path(folder).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {root}")
    layout = label_layout(root)
    if layout is None:
        pairs = ", ".join(f"{r}/ and {f}/" for r, f in LABEL_LAYOUTS)
        raise ValueError(f"{root} has no label subfolders ({pairs}); register it with one label (real or fake) instead")
    report = RegistrationReport()
    for kind, sub in layout.items():
        imageset = ensure_imageset(
            session,
            f"{name}-{kind}",
            kind=kind,
            root=str(sub.resolve()),
            origin="folder",
            generator=generator,
            owner=owner,
        )
        _register_paths(
            session,
            imageset,
            sub.resolve(),
            [(None, p.relative_to(sub).as_posix()) for p in image_files(sub)],
            report,
            checkpoint=checkpoint,
        )
    for path in image_files(root):
        if not any(path.is_relative_to(sub) for sub in layout.values()):
            report.problems.append(
                RowProblem(None, path.relative_to(root).as_posix(), "outside the label subfolders: not registered")
            )
    return report


def register_csv(
    session: Session,
    csv_path: str | Path,
    root: str | Path,
    *,
    name: str,
    generator: str | None = None,
    split: str | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    checkpoint: Checkpoint | None = None,
    owner: str | None = None,
) -> RegistrationReport:
    """Register the rows of an official ``image,class,split`` CSV (paths relative to ``root``).

    A CSV holding one class becomes the set ``name``; one holding both becomes ``name-real``
    and ``name-fake``. ``split`` keeps only rows of that split. Bad rows are reported.
    """
    csv_path, root = Path(csv_path), Path(root).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"image root folder not found: {root}")
    report = RegistrationReport()
    by_kind: dict[str, list[tuple[int | None, str]]] = {"real": [], "fake": []}
    with open(csv_path, newline="") as f:
        reader = csv.DictReader(f)
        missing = {"image", "class"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{csv_path}: missing column(s) {sorted(missing)}; expected header image,class,split")
        for i, rec in enumerate(reader, start=1):
            if split is not None and (rec.get("split") or "") != split:
                continue
            label = (rec.get("class") or "").strip()
            if label not in ("0", "1"):
                report.problems.append(RowProblem(i, rec.get("image") or "", f"class must be 0 or 1, got {label!r}"))
                continue
            by_kind["fake" if label == "1" else "real"].append((i, rec.get("image") or ""))
    kinds = [k for k, items in by_kind.items() if items]
    for kind in kinds:
        set_name = name if len(kinds) == 1 else f"{name}-{kind}"
        imageset = ensure_imageset(
            session, set_name, kind=kind, root=str(root), origin="csv", generator=generator, owner=owner
        )
        _register_paths(session, imageset, root, by_kind[kind], report, max_pixels, checkpoint=checkpoint)
    return report
