"""Compare page with one million predictions in a SQLite store: time of the aggregation queries
and of the page's first render (AppTest, cold st.cache_data); write docs/benchmarks.md's
"Compare page" section (only that section is replaced).

Usage: OMP_NUM_THREADS=1 python benchmarks/bench_compare.py [--per-set 10000] [--repeats 3]
       [--db /tmp/bench_compare.db] [--no-write]
"""

from __future__ import annotations

import _report  # benchmarks/_report.py (the scripts run from this folder)

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
from db.imagesets import ensure_imageset  # noqa: E402
from db.models import ORIGINAL, Image  # noqa: E402
from db.queries import (  # noqa: E402
    bulk_insert_predictions,
    get_or_create_condition,
    get_or_create_model,
    get_or_create_run,
    insert_ignore,
)
from db.session import dispose_all, session_scope  # noqa: E402

DOC = REPO / "docs" / "benchmarks.md"
HEADING = "## Compare page"
PAGE = REPO / "dashboard" / "views" / "compare.py"
CONDITIONS = (ORIGINAL, "jpeg/q75", "meme", "screenshot", "instagram-filter")
N_REAL, N_FAKE = 4, 16  # image sets; 20 sets x 5 conditions x per_set = predictions


def build_store(url: str, per_set: int) -> int:
    """A store like the study's, scaled: 4 real + 16 fake sets under 5 conditions."""
    rng = np.random.default_rng(0)
    total = 0
    with session_scope(url) as s:
        model = get_or_create_model(s, "bench-model", origin="imported")
        for c in CONDITIONS:
            get_or_create_condition(s, c)
    for k in range(N_REAL + N_FAKE):
        kind = "real" if k < N_REAL else "fake"
        with session_scope(url) as s:
            iset = ensure_imageset(s, f"{kind}{k:02d}", kind=kind, root=None, origin="bench")
            insert_ignore(
                s,
                Image.__table__,
                [{"imageset_id": iset.id, "relpath": f"{i}.png", "has_file": False} for i in range(per_set)],
            )
            ids = [
                i
                for (i,) in s.execute(
                    Image.__table__.select().with_only_columns(Image.id).where(Image.imageset_id == iset.id)
                )
            ]
            for j, c in enumerate(CONDITIONS):
                run = get_or_create_run(s, model.id, iset.id, c)
                mu = 0.35 if kind == "real" else 0.75 - 0.08 * j
                scores = np.clip(rng.normal(mu, 0.2, per_set), 0, 1)
                total += bulk_insert_predictions(
                    s, [{"run_id": run.id, "image_id": i, "score": float(v)} for i, v in zip(ids, scores)]
                )
    return total


def median_s(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def charts_data(score_tables, data, table) -> list:
    return [
        (score_tables.roc_curve(data, c, table.real_sets), score_tables.score_histogram(data, c, table.real_sets))
        for c in CONDITIONS
    ]


def measure(url: str, repeats: int) -> list[tuple[str, str]]:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    import jobs.params  # noqa: F401  # before AppTest puts dashboard/views (with jobs.py) on sys.path
    from db import compare
    from robustness import score_tables

    with session_scope(url, readonly=True) as s:
        model_id = compare.models_with_predictions(s)[0].id

    def load():
        with session_scope(url, readonly=True) as s:
            return compare.load_scores(s, model_id)

    def models():
        with session_scope(url, readonly=True) as s:
            return compare.models_with_predictions(s)

    data = load()
    n = data.n_predictions
    table = score_tables.compare_table(data)
    rows = [
        ("predictions in the store", f"{n:,}"),
        ("`models_with_predictions` (models and a change marker)", f"{median_s(models, repeats):.2f} s"),
        ("`load_scores` (all 1M scores into numpy, one SELECT per run)", f"{median_s(load, repeats):.2f} s"),
        (
            "`compare_table` AUC, 16 fake x 4 real sets x 5 conditions",
            f"{median_s(lambda: score_tables.compare_table(data), repeats):.2f} s",
        ),
        (
            "`roc_curve` + `score_histogram`, 5 conditions",
            f"{median_s(lambda: charts_data(score_tables, data, table), repeats):.2f} s",
        ),
    ]
    os.environ["DATABASE_URL"] = url
    os.environ["SPAI_START_WORKER"] = "0"

    def first_render():
        st.cache_data.clear()  # cold caches: the render reads and aggregates everything
        at = AppTest.from_file(str(PAGE), default_timeout=120).run()
        assert not at.exception, at.exception
        assert at.dataframe, "the page rendered no table"

    first_render()  # warm-up: imports and bytecode, as in a running server
    rows.append(
        ("Compare page first render (AppTest, cold `st.cache_data`)", f"{median_s(first_render, repeats):.2f} s")
    )
    t0 = time.perf_counter()
    score_tables.bootstrap_cells(data, table)
    rows.append(
        (
            "bootstrap intervals, 200 replicates x 80 cells (off by default above 20,000 predictions)",
            f"{time.perf_counter() - t0:.1f} s",
        )
    )
    return rows


def write_section(text: str) -> None:
    _report.write_section(HEADING, text, DOC)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-set", type=int, default=10_000, help="images per set")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--db", default="/tmp/bench_compare.db")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    url = f"sqlite:///{args.db}"
    if not Path(args.db).exists():
        t0 = time.perf_counter()
        n = build_store(url, args.per_set)
        print(f"built {n:,} predictions in {time.perf_counter() - t0:.0f} s", flush=True)
    dispose_all()
    rows = measure(url, args.repeats)
    text = "\n".join(
        [
            HEADING,
            "",
            f"`python benchmarks/bench_compare.py --per-set {args.per_set}` on SQLite (file, WAL), "
            f"{platform.machine()}, Python {platform.python_version()}, {os.cpu_count()} logical "
            "CPUs shared with other jobs while measured; median of "
            f"{args.repeats} runs. The store holds one model's scores for 4 real and 16 fake sets "
            "under 5 conditions. Scores come out with one indexed SELECT per run (one column read "
            "straight from the DBAPI cursor into numpy); every metric is vectorised numpy (AUC by "
            "one sort per condition for every fake x real pair).",
            "",
            "| measurement | result |",
            "|---|---:|",
            *[f"| {k} | {v} |" for k, v in rows],
            "",
        ]
    )
    print(text)
    if not args.no_write:
        write_section(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
