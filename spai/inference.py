"""Batch scoring over directories and official-format CSVs (no database, no Streamlit).

An input is a directory (every file in it becomes a row with class 1 and the chosen split, as
the official ``infer`` does) or a CSV with at least ``image,class,split`` (paths relative to a
root directory, default the CSV's folder; a path escaping the root is refused per row). The
output CSV keeps every input column and adds the score column (named by ``--tag``), an
``error`` column, and with patch export a ``<tag>_mask`` column.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
from PIL import Image

from spai.detector import Detector, Prediction
from spai.imageio import ImageLoadError, open_rgb, resolve_under_root, to_model_input
from spai.overlay import overlay_image

__all__ = [
    "InputTable",
    "RunSummary",
    "check_labels",
    "read_input",
    "score_table",
    "write_overlay",
    "format_score",
]

NON_IMAGE_SUFFIXES = {".csv", ".json", ".txt", ".md", ".yaml", ".yml", ".py", ".npz"}


@dataclass
class InputTable:
    """Rows to score: all input columns kept; ``path`` resolved or ``error`` set per row."""

    name: str  # output CSV stem
    columns: list[str]
    rows: list[dict[str, str]]
    root: Path
    paths: list[Path | None] = field(default_factory=list)
    errors: list[str | None] = field(default_factory=list)


@dataclass
class RunSummary:
    output_csv: Path
    scored: int
    failed: int
    skipped: int  # rows outside the split
    predictions: list[Prediction | None]

    @property
    def line(self) -> str:
        return f"{self.scored} scored, {self.failed} failed"


def format_score(value: float) -> str:
    """A float32 printed as the Python float it equals (as the official CSVs hold it)."""
    return repr(float(np.float32(value)))


def read_input(path: str | Path, root: str | Path | None = None, split: str = "test") -> InputTable:
    """Read a directory or an official-format CSV into an InputTable."""
    path = Path(path)
    if path.is_dir():
        files = sorted(
            p
            for p in path.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() not in NON_IMAGE_SUFFIXES
        )
        rows = [{"image": p.name, "class": "1", "split": split} for p in files]
        table = InputTable(path.name, ["image", "class", "split"], rows, path.resolve())
        table.paths = [p.resolve() for p in files]
        table.errors = [None] * len(files)
        return table
    if not path.is_file():
        raise FileNotFoundError(f"input not found: {path}")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            columns = list(reader.fieldnames or [])
            rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"{path}: not a readable UTF-8 CSV file ({exc})") from None
    if "image" not in columns:
        raise ValueError(f"{path}: CSV needs an 'image' column (found: {', '.join(columns)})")
    root_dir = Path(root) if root is not None else path.parent
    table = InputTable(path.stem, columns, rows, root_dir.resolve())
    for row in rows:
        try:
            table.paths.append(resolve_under_root(root_dir, row["image"]))
            table.errors.append(None)
        except ImageLoadError as exc:
            table.paths.append(None)
            table.errors.append(str(exc))
    return table


def check_labels(table: InputTable, source: str | Path, split: str | None = "test") -> None:
    """Raise ValueError naming the first row of ``split`` whose ``class`` is not 0 or 1."""
    if "class" not in table.columns:
        raise ValueError(f"{source}: CSV needs a 'class' column (0 real, 1 fake) to be "
                         f"evaluated (found: {', '.join(table.columns)})")
    for i, row in enumerate(table.rows, start=1):
        if split is not None and row.get("split", split) != split:
            continue
        label = (row.get("class") or "").strip()
        try:
            value = float(label)
        except ValueError:
            value = None
        if value not in (0.0, 1.0):
            raise ValueError(f"{source}: row {i} ({row.get('image')!r}): class must be 0 or 1, "
                             f"got {label!r}")


def write_overlay(pred: Prediction, source: Path, out_dir: Path, detector: Detector) -> Path:
    """Save attn_overlay.png, attn_mask.png for one scored image; returns the mask path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    img = open_rgb(source, detector.max_pixels)
    x = to_model_input(img, detector.model.img_size, detector.resize_to)  # 3 x H x W
    padded = Image.fromarray((x.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
    overlay, mask = overlay_image(padded, pred.boxes, pred.attention_mean)
    overlay.save(out_dir / "attn_overlay.png")
    mask.save(out_dir / "attn_mask.png")
    return out_dir / "attn_mask.png"


def score_table(
    detector: Detector,
    table: InputTable,
    output_dir: str | Path,
    *,
    tag: str = "spai",
    split: str | None = "test",
    export_patches: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> RunSummary:
    """Score the rows of `split` (None: all rows) and write ``<output>/<name>.csv``."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    wanted = [i for i, r in enumerate(table.rows) if split is None or r.get("split", split) == split]
    preds: list[Prediction | None] = [None] * len(table.rows)
    scored = failed = 0
    for n, i in enumerate(wanted):
        path, err = table.paths[i], table.errors[i]
        pred = Prediction(source=table.rows[i]["image"], error=err) if err else detector.score_one(path, table.rows[i]["image"])
        preds[i] = pred
        if pred.ok:
            scored += 1
        else:
            failed += 1
        if on_progress is not None:
            on_progress(n + 1, len(wanted))
    columns = list(table.columns)
    extra_cols = [tag, "error"] + ([f"{tag}_mask"] if export_patches else [])
    columns += [c for c in extra_cols if c not in columns]
    out_csv = output_dir / f"{table.name}.csv"
    with open(out_csv, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for i, row in enumerate(table.rows):
            out = dict(row)
            pred = preds[i]
            out[tag] = format_score(pred.score) if pred is not None and pred.ok else ""
            out["error"] = pred.error if pred is not None and pred.error else ""
            if export_patches:
                out[f"{tag}_mask"] = ""
                if pred is not None and pred.ok:
                    mask = write_overlay(pred, table.paths[i], output_dir / tag / "images" / str(i), detector)
                    out[f"{tag}_mask"] = str(mask)
            writer.writerow(out)
    return RunSummary(out_csv, scored, failed, len(table.rows) - len(wanted), preds)


def labels_and_scores(summary: RunSummary, table: InputTable) -> tuple[np.ndarray, np.ndarray]:
    """(labels, scores) of the successfully scored rows, for metrics."""
    y, s = [], []
    for row, pred in zip(table.rows, summary.predictions):
        if pred is not None and pred.ok and row.get("class", "") not in ("", None):
            y.append(int(float(row["class"])))
            s.append(pred.score)
    return np.asarray(y, dtype=int), np.asarray(s, dtype=np.float64)


def iter_checkpoints(model: str | Path) -> Iterable[Path]:
    """A file, or a directory scanned for ckpt_epoch_*.pth (newest epoch last)."""
    model = Path(model)
    if model.is_dir():
        found = sorted(
            model.glob("ckpt_epoch_*.pth"), key=lambda p: int(p.stem.rsplit("_", 1)[-1] or 0)
        )
        if not found:
            raise FileNotFoundError(f"no ckpt_epoch_*.pth files in {model}")
        return found
    return [model]
