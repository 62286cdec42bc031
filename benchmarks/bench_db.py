"""Prediction-store benchmark: bulk insert (predictions/s) and reading runs back.

Writes docs/benchmarks.md's "Prediction store" section (only that section is replaced).

Usage: OMP_NUM_THREADS=1 python benchmarks/bench_db.py [--images 100000] [--runs 10]
       [--database-url URL] [--no-write]
Without --database-url a fresh SQLite file in a temporary folder is used.
"""

from __future__ import annotations

import _report  # benchmarks/_report.py (the scripts run from this folder)

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import select

from db.importers import import_study  # noqa: E402
from db.models import Image, ImageSet  # noqa: E402
from db.queries import (  # noqa: E402
    bulk_insert_predictions,
    get_or_create_condition,
    get_or_create_model,
    get_or_create_run,
    insert_ignore,
    run_predictions,
    score_arrays,
    study_frame,
)
from db.session import dispose_all, get_engine, session_scope  # noqa: E402

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
HEADING = "## Prediction store"
NOTE = (
    "PostgreSQL is not part of this table; measure it with `--database-url "
    "postgresql+psycopg://... --no-write` (its inserts use one "
    "`INSERT ... SELECT FROM unnest(arrays) ON CONFLICT DO NOTHING` per chunk)."
)
BATCH = 5_000  # predictions per transaction, as a worker batch would be at most


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def bench(url: str, n_images: int, n_runs: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    with session_scope(url) as s:
        model = get_or_create_model(s, "bench", origin="demo")
        iset = ImageSet(name="bench-fake", kind="fake", origin="bench")
        s.add(iset)
        s.flush()
        insert_ignore(
            s,
            Image.__table__,
            [{"imageset_id": iset.id, "relpath": f"{i:07d}.png", "has_file": False} for i in range(n_images)],
        )
        image_ids = list(s.scalars(select(Image.id).where(Image.imageset_id == iset.id)))
        run_ids = [
            get_or_create_run(s, model.id, iset.id, get_or_create_condition(s, f"bench/{r}").id).id
            for r in range(n_runs)
        ]
    res: dict[str, float] = {}
    t_insert = 0.0
    for run_id in run_ids:
        scores = rng.random(n_images)
        rows = [
            {"run_id": run_id, "image_id": iid, "score": float(sc), "logit": float(sc), "seconds": 0.1}
            for iid, sc in zip(image_ids, scores)
        ]
        for start in range(0, n_images, BATCH):
            chunk = rows[start : start + BATCH]
            _, dt = _timed(lambda: _insert(url, chunk))
            t_insert += dt
    res["inserted"] = n_images * n_runs
    res["insert_per_s"] = res["inserted"] / t_insert
    att = [
        {"run_id": run_ids[0], "image_id": iid, "score": 0.5, "attention": list(rng.random(12).round(6))}
        for iid in image_ids[: 2 * BATCH]
    ]
    with session_scope(url) as s:  # attention rows go to a fresh run
        run_att = get_or_create_run(s, model.id, iset.id, get_or_create_condition(s, "bench/attention").id).id
    for r in att:
        r["run_id"] = run_att
    _, dt = _timed(lambda: [_insert(url, att[i : i + BATCH]) for i in range(0, len(att), BATCH)])
    res["insert_attention_per_s"] = len(att) / dt
    _, dt = _timed(lambda: _insert(url, rows[:BATCH]))  # all conflicts: idempotent re-insert
    res["reinsert_conflicts_per_s"] = BATCH / dt
    with session_scope(url, readonly=True) as s:
        frame, res["read_run_s"] = _timed(lambda: run_predictions(s, run_ids[0]))
        assert len(frame) == n_images
        arrays, res["score_arrays_s"] = _timed(lambda: score_arrays(s, run_ids))
        assert sum(len(a) for a in arrays.values()) == n_images * n_runs
        sf, res["study_frame_s"] = _timed(lambda: study_frame(s, model.id))
        res["study_frame_rows"] = len(sf)
    with tempfile.TemporaryDirectory() as tmp:
        study_url = f"sqlite:///{tmp}/study.db" if url.startswith("sqlite") else None
        if study_url:
            with session_scope(study_url) as s:
                rep, res["import_study_s"] = _timed(lambda: import_study(s))
            res["import_study_predictions"] = rep.predictions_added
            dispose_all()
    return res


def _insert(url: str, rows: list[dict]) -> None:
    with session_scope(url) as s:
        bulk_insert_predictions(s, rows)


def write_section(text: str) -> None:
    _report.write_section(HEADING, text, DOC)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.db"
        res = bench(url, args.images, args.runs)
        backend = get_engine(url).dialect.name
        dispose_all()
    n = int(res["inserted"])
    lines = [
        HEADING,
        "",
        f"`python benchmarks/bench_db.py --images {args.images} --runs {args.runs}` on "
        f"{backend} ({'temporary file, WAL' if backend == 'sqlite' else 'given URL'}), "
        f"{platform.machine()}, Python {platform.python_version()}, 2 logical CPUs shared "
        f"with other jobs while measured. Inserts go through `db.queries.bulk_insert_predictions` "
        f"(INSERT ... ON CONFLICT DO NOTHING), {BATCH:,} rows per transaction, as the worker does.",
        "",
        "| measurement | result |",
        "|---|---:|",
        f"| bulk insert, score/logit/seconds ({n:,} predictions, {args.runs} runs) | "
        f"{res['insert_per_s']:,.0f} predictions/s |",
        f"| bulk insert with 12-float attention JSON ({2 * BATCH:,}) | "
        f"{res['insert_attention_per_s']:,.0f} predictions/s |",
        f"| re-insert of existing predictions (all conflicts, {BATCH:,}) | "
        f"{res['reinsert_conflicts_per_s']:,.0f} rows/s |",
        f"| read one run back as a DataFrame (`run_predictions`, {args.images:,} rows) | {res['read_run_s']:.2f} s |",
        f"| `score_arrays` for all {args.runs} runs ({n:,} scores, one query) | {res['score_arrays_s']:.2f} s |",
        f"| `study_frame` for the model ({int(res['study_frame_rows']):,} rows, one query) | "
        f"{res['study_frame_s']:.2f} s |",
    ]
    if "import_study_s" in res:
        lines.append(
            f"| `import_study` of the shipped study ({int(res['import_study_predictions']):,}"
            f" predictions, 17,637 images) | {res['import_study_s']:.1f} s |"
        )
    if backend == "sqlite":
        lines += ["", NOTE]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        write_section(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
