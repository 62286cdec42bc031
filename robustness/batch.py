"""Derive a whole image set under one condition: read a SPAI CSV or a folder, write the derived
images, an ``image,class,split`` CSV (paths relative to the output folder) and a JSON of
per-image parameters. A broken or refused input becomes an error row; the rest goes on.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from robustness.apply import derive_file
from robustness.registry import get
from core.atomic import atomic_open, write_text

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif")
REAL_DIRS, FAKE_DIRS = {"real", "0_real"}, {"fake", "1_fake", "synthetic"}


@dataclass(frozen=True)
class InputItem:
    """One image to derive; ``error`` is set when the row itself is unusable."""

    image: str  # path as given (CSV) or relative to the folder
    label: int | None  # 1 = fake, 0 = real
    split: str
    path: Path | None  # resolved source path, None when refused
    error: str | None = None
    out_rel: str = ""  # output path relative to the output folder, without extension


@dataclass
class BatchResult:
    """What one batch wrote."""

    csv_path: Path
    json_path: Path
    n_ok: int = 0
    errors: list[dict] = field(default_factory=list)


def _resolve_inside(root: Path, image: str) -> tuple[Path | None, str | None, str]:
    root = root.resolve()
    path = (root / image).resolve()
    if not path.is_relative_to(root):
        return None, f"path escapes the root directory {root}: {image!r}", ""
    return path, None, path.relative_to(root).with_suffix("").as_posix()


def _label_from_path(rel: PurePosixPath) -> int | None:
    parts = {p.lower() for p in rel.parts[:-1]}
    if parts & FAKE_DIRS:
        return 1
    if parts & REAL_DIRS:
        return 0
    return None


def read_csv_items(csv_path: Path, root_dir: Path | None = None) -> list[InputItem]:
    """Rows of an official ``image,class,split`` CSV; paths resolved against ``root_dir``
    (default: the CSV's folder) and refused when they escape it."""
    root = root_dir if root_dir is not None else csv_path.parent
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"image", "class"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(
                f"{csv_path}: missing column(s) {sorted(missing)}; expected the SPAI format image,class,split"
            )
        items = []
        for row in reader:
            image = (row.get("image") or "").strip()
            split = (row.get("split") or "test").strip() or "test"
            try:
                label = int(float(row["class"]))
                if label not in (0, 1):
                    raise ValueError
            except (TypeError, ValueError):
                items.append(InputItem(image, None, split, None, f"class must be 0 or 1, got {row.get('class')!r}"))
                continue
            if not image:
                items.append(InputItem(image, label, split, None, "empty image path"))
                continue
            path, err, out_rel = _resolve_inside(root, image)
            items.append(InputItem(image, label, split, path, err, out_rel))
    return items


def read_dir_items(folder: Path, label: int | None = None) -> list[InputItem]:
    """Image files under ``folder`` (recursive, sorted); class from a real/fake folder name,
    else ``label``; without either, the row is an error."""
    items = []
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS):
        rel = PurePosixPath(path.relative_to(folder).as_posix())
        lab = _label_from_path(rel)
        lab = label if lab is None else lab
        err = None if lab is not None else "class unknown: not under a real/fake folder; pass --label"
        items.append(InputItem(str(rel), lab, "test", path.resolve(), err, rel.with_suffix("").as_posix()))
    return items


def derive_items(
    items: list[InputItem], condition_id: str, output: Path, name: str, *, progress: bool = True
) -> BatchResult:
    """Derive every item into ``output``; write ``<name>.csv`` and ``<name>.params.json``."""
    cond = get(condition_id)
    output.mkdir(parents=True, exist_ok=True)
    result = BatchResult(output / f"{name}.csv", output / f"{name}.params.json")
    rows, records = [], []
    taken: dict[str, str] = {}  # out_rel -> source image, to refuse silent overwrites
    for item in tqdm(items, desc=condition_id, unit="img", disable=not progress):
        if item.error is not None or item.path is None:
            result.errors.append({"image": item.image, "error": item.error})
            continue
        out_stem = output / item.out_rel
        if item.out_rel in taken:
            msg = f"output {item.out_rel}{cond.extension} would overwrite {taken[item.out_rel]!r}"
            result.errors.append({"image": item.image, "error": msg})
            continue
        taken[item.out_rel] = item.image
        try:
            d = derive_file(item.path, condition_id, out_stem, image_key=item.image)
        except Exception as exc:  # noqa: BLE001  one bad image must not stop the batch
            result.errors.append({"image": item.image, "error": f"{type(exc).__name__}: {exc}"})
            continue
        rel_out = d.path.relative_to(output).as_posix()
        rows.append({"image": rel_out, "class": item.label, "split": item.split})
        records.append(
            {
                "image": rel_out,
                "source": item.image,
                "class": item.label,
                "width": d.width,
                "height": d.height,
                "params": d.params,
            }
        )
    with atomic_open(result.csv_path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["image", "class", "split"])
        writer.writeheader()
        writer.writerows(rows)
    meta = {k: getattr(cond, k) for k in ("id", "family", "description", "params", "file_format", "save_kwargs")}
    doc = {"condition": meta, "images": records, "errors": result.errors}
    write_text(result.json_path, json.dumps(doc, indent=1, default=str))
    result.n_ok = len(rows)
    return result
