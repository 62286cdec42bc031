"""A training CSV from registered image sets: real and fake sets -> official ``image,class,split``.

The rows' paths are relative to one root folder (the sets' common folder), and every row is
checked to stay inside it (``resolve_inside``), so the CSV cannot point outside the sets. The
train/val split is per class and seeded: the same sets and seed give the same CSV.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.imagesets import resolve_inside
from db.models import Image, ImageSet

LABELS = {"real": 0, "fake": 1}


@dataclass(frozen=True)
class TrainingCsv:
    path: Path  # the CSV written
    root: Path  # its image paths are relative to this folder
    counts: dict[str, int]  # "train real", "train fake", "val real", "val fake" -> rows
    skipped: list[str] = field(default_factory=list)  # images left out, with the reason


def _usable_files(session: Session, imageset_ids: list[int], kind: str) -> list[Path]:
    files = []
    for set_id in imageset_ids:
        iset = session.get(ImageSet, set_id)
        if iset is None:
            raise KeyError(f"no image set with id {set_id}")
        if iset.kind != kind:
            raise ValueError(f"image set {iset.name!r} is {iset.kind}, not {kind}")
        if iset.root is None:
            raise ValueError(f"image set {iset.name!r} has no image files (imported scores only)")
        rels = session.scalars(
            select(Image.relpath)
            .where(Image.imageset_id == set_id, Image.has_file.is_(True), Image.error.is_(None))
            .order_by(Image.id)
        )
        files += [Path(iset.root) / r for r in rels]
    return files


def _split(n: int, val_fraction: float, rng: np.random.Generator) -> list[str]:
    """``n`` split names, ``round(n * val_fraction)`` of them "val" (at least one when n > 1)."""
    n_val = min(n - 1, max(1, round(n * val_fraction))) if n > 1 else 0
    val = set(rng.permutation(n)[:n_val].tolist())
    return ["val" if i in val else "train" for i in range(n)]


def write_training_csv(
    session: Session,
    out_csv: str | Path,
    *,
    real_ids: list[int],
    fake_ids: list[int],
    val_fraction: float = 0.2,
    seed: int = 0,
) -> TrainingCsv:
    """Write the official training CSV for the chosen real and fake sets (usable images only:
    with a file, decodable) and return where it is and what it holds."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    by_kind = {"real": _usable_files(session, real_ids, "real"), "fake": _usable_files(session, fake_ids, "fake")}
    for kind, files in by_kind.items():
        if len(files) < 2:
            raise ValueError(
                f"need at least 2 usable {kind} images to train and validate, "
                f"found {len(files)}: choose more {kind} sets"
            )
    root = Path(os.path.commonpath([f.parent.resolve() for fs in by_kind.values() for f in fs]))
    rng = np.random.default_rng(seed)
    rows, skipped = [], []
    counts = {f"{split} {kind}": 0 for split in ("train", "val") for kind in LABELS}
    for kind, files in by_kind.items():
        for path, split in zip(files, _split(len(files), val_fraction, rng)):
            rel = os.path.relpath(path.resolve(), root)
            try:
                resolve_inside(root, rel)
            except ValueError as exc:
                skipped.append(f"{path}: {exc}")
                continue
            rows.append((Path(rel).as_posix(), LABELS[kind], split))
            counts[f"{split} {kind}"] += 1
    out = Path(out_csv)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "class", "split"])
        writer.writerows(rows)
    return TrainingCsv(out, root, counts, skipped)
