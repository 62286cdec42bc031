"""Batch scoring over directories and official-format CSVs (no database, no Streamlit).

An input is a directory (every file in it becomes a row with class 1 and the chosen split, as
the official ``infer`` does) or a CSV with at least ``image,class,split`` (paths relative to a
root directory, default the CSV's folder; a path escaping the root is refused per row). The
output CSV keeps every input column and adds the score column (named by ``--tag``), an
``error`` column, and with patch export a ``<tag>_mask`` column.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable, Iterable

import numpy as np
from PIL import Image

from core.atomic import atomic_open
from spai.batching import score_stream
from spai.detector import Detector, ImageResult
from core.imageio import ImageLoadError, open_rgb, resolve_under_root, to_model_input
from spai.overlay import overlay_image
from spai.partial_csv import PartialCsv

__all__ = [
    "InputTable",
    "InferSummary",
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
class InferSummary:
    output_csv: Path
    scored: int
    failed: int
    skipped: int  # rows outside the split
    predictions: list[ImageResult | None]  # None for rows not scored in this call
    scores: list[float | None]  # per row, resumed rows included
    resumed: int = 0  # rows of the split kept from an interrupted run, not recomputed

    @property
    def line(self) -> str:
        kept = f" ({self.resumed} resumed from an interrupted run)" if self.resumed else ""
        return f"{self.scored} scored, {self.failed} failed{kept}"


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
        raise ValueError(
            f"{source}: CSV needs a 'class' column (0 real, 1 fake) to be evaluated (found: {', '.join(table.columns)})"
        )
    for i, row in enumerate(table.rows, start=1):
        if split is not None and row.get("split", split) != split:
            continue
        label = (row.get("class") or "").strip()
        try:
            value = float(label)
        except ValueError:
            value = None
        if value not in (0.0, 1.0):
            raise ValueError(f"{source}: row {i} ({row.get('image')!r}): class must be 0 or 1, got {label!r}")


def write_overlay(pred: ImageResult, source: Path, out_dir: Path, detector: Detector) -> Path:
    """Save attn_overlay.png, attn_mask.png for one scored image; returns the mask path."""
    img = open_rgb(source, detector.max_pixels)
    x = to_model_input(img, detector.model.img_size, detector.resize_to)  # 3 x H x W
    padded = Image.fromarray((x.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
    overlay, mask = overlay_image(padded, pred.boxes, pred.attention_mean)
    for name, picture in (("attn_overlay.png", overlay), ("attn_mask.png", mask)):
        with atomic_open(out_dir / name, "wb") as fh:
            picture.save(fh, format="PNG")
    return out_dir / "attn_mask.png"


def _run_arguments(
    detector: Detector, table: InputTable, tag: str, split: str | None, export_patches: bool
) -> dict[str, object]:
    """What decides an output row: an interrupted output is resumed only when these match."""
    images = hashlib.sha256("\n".join(r.get("image", "") for r in table.rows).encode())
    return {
        "model_sha256": detector.info.sha256,
        "config": detector.info.config,
        "backend": getattr(detector, "backend", "torch"),
        "resize_to": detector.resize_to,
        "max_pixels": detector.max_pixels,
        "root": str(table.root),
        "tag": tag,
        "split": split,
        "export_patches": export_patches,
        "images": images.hexdigest(),
    }


def _score_of(text: str | None) -> float | None:
    return float(text) if text not in (None, "") else None


def score_table(
    detector: Detector,
    table: InputTable,
    output_dir: str | Path,
    *,
    tag: str = "spai",
    split: str | None = "test",
    export_patches: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
    batch_size: int | None = None,
) -> InferSummary:
    """Score the rows of `split` (None: all rows) into ``<output>/<name>.csv``.

    Images are scored in groups (``spai.batching.score_stream``): at most ``batch_size``
    images (None: as many as fill one crop chunk) whose crops share backbone passes; a row
    that cannot be decoded gets its error in its own row. Rows are appended as they are
    scored (``<name>.csv.partial``, renamed when complete); run again with the same
    arguments after a crash, the rows already written are kept, not recomputed (see
    ``spai.partial_csv``).
    """
    output_dir = Path(output_dir)
    wanted = {i for i, r in enumerate(table.rows) if split is None or r.get("split", split) == split}
    columns = list(table.columns)
    extra_cols = [tag, "error"] + ([f"{tag}_mask"] if export_patches else [])
    columns += [c for c in extra_cols if c not in columns]
    out = PartialCsv(
        output_dir / f"{table.name}.csv", columns, _run_arguments(detector, table, tag, split, export_patches)
    )
    kept = out.start([r.get("image", "") for r in table.rows], key="image")
    preds: list[ImageResult | None] = [None] * len(table.rows)
    scores: list[float | None] = [_score_of(r.get(tag)) for r in kept]
    scores += [None] * (len(table.rows) - len(kept))
    failed = sum(1 for i, r in enumerate(kept) if i in wanted and r.get("error"))
    done = sum(1 for i in range(len(kept)) if i in wanted)
    todo = [i for i in range(len(kept), len(table.rows)) if i in wanted and not table.errors[i]]
    stream = score_stream(
        detector, [table.paths[i] for i in todo], names=[table.rows[i]["image"] for i in todo], max_images=batch_size
    )
    try:
        for i in range(len(kept), len(table.rows)):
            row = dict(table.rows[i])
            row[tag], row["error"] = "", ""
            if export_patches:
                row[f"{tag}_mask"] = ""
            if i in wanted:
                err = table.errors[i]
                pred = ImageResult(source=table.rows[i]["image"], error=err) if err else next(stream)
                preds[i] = pred
                if pred.ok:
                    scores[i] = float(np.float32(pred.score))
                    row[tag] = format_score(pred.score)
                    if export_patches:
                        row[f"{tag}_mask"] = str(
                            write_overlay(pred, table.paths[i], output_dir / tag / "images" / str(i), detector)
                        )
                else:
                    failed += 1
                    row["error"] = pred.error or ""
                done += 1
                if on_progress is not None:
                    on_progress(done, len(wanted))
            out.append(row)
        out.finish()
    finally:
        stream.close()
        out.close()
    scored = sum(1 for i in wanted if scores[i] is not None)
    return InferSummary(
        out.target,
        scored,
        failed,
        len(table.rows) - len(wanted),
        preds,
        scores,
        resumed=sum(1 for i in range(len(kept)) if i in wanted),
    )


def labels_and_scores(summary: InferSummary, table: InputTable) -> tuple[np.ndarray, np.ndarray]:
    """(labels, scores) of the successfully scored rows (resumed ones too), for metrics."""
    y, s = [], []
    for row, score in zip(table.rows, summary.scores):
        if score is not None and row.get("class", "") not in ("", None):
            y.append(int(float(row["class"])))
            s.append(score)
    return np.asarray(y, dtype=int), np.asarray(s, dtype=np.float64)


def iter_checkpoints(model: str | Path) -> Iterable[Path]:
    """A file, or a directory scanned for ckpt_epoch_*.pth (newest epoch last)."""
    model = Path(model)
    if model.is_dir():
        found = sorted(model.glob("ckpt_epoch_*.pth"), key=lambda p: int(p.stem.rsplit("_", 1)[-1] or 0))
        if not found:
            raise FileNotFoundError(f"no ckpt_epoch_*.pth files in {model}")
        return found
    return [model]
