"""Before/after the issue-13 refactor: the store, Compare and inference benchmarks of a base
revision and of HEAD, one right after the other on this machine, each side running its own
scripts against its own code; writes docs/benchmarks.md's "Before/after the issue-13 refactor"
section (only that section is replaced).

    python benchmarks/before_after.py                      # base ec85660, about 6-8 min on 2 cores
    python benchmarks/before_after.py --base REV --no-write
    python benchmarks/before_after.py --db-images 2000 --db-runs 2 --per-set 200 --repeats 1 \\
        --no-write                                         # a smoke run (about 2 min)

Both revisions are checked out as temporary git worktrees (HEAD too, so uncommitted edits are
not measured) and each script runs there with PYTHONPATH set to that worktree; the script checks
that ``spai``, ``robustness`` and ``db`` are imported from it (the venv's editable install points
at the main checkout) and prints their paths. The scripts measured are those that exist in both
revisions with the same options: ``bench_db.py``, ``bench_compare.py`` and ``bench_spai.py``
(this project's side only: the official code is not run). Each table row is matched by its
first cell and column, and the ratio after / before is given for every number found in both.
"""

from __future__ import annotations

import _report  # benchmarks/_report.py (the scripts run from this folder)

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADING = "## Before/after the issue-13 refactor"
PACKAGES = ("spai", "robustness", "db")
NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], check=True, capture_output=True, text=True).stdout.strip()


def _env(tree: Path) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(tree), SPAI_REFHARNESS="")
    env.pop("DATABASE_URL", None)
    return env


def check_imports(tree: Path) -> list[str]:
    """The files ``spai``, ``robustness`` and ``db`` load from when run in ``tree``; raises if
    any comes from elsewhere."""
    code = f"import {', '.join(PACKAGES)}; " + "; ".join(f"print({p}.__file__)" for p in PACKAGES)
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tree / "benchmarks",
        env=_env(tree),
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    wrong = [f for f in out if not Path(f).resolve().is_relative_to(tree.resolve())]
    if wrong:
        raise SystemExit(f"{tree}: imported from outside the worktree: {', '.join(wrong)}")
    return out


def run_script(tree: Path, script: str, args: list[str], threads: int | None) -> tuple[str, float]:
    """Run ``benchmarks/<script>`` of ``tree`` with its own code; its stdout and wall time."""
    env = _env(tree)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    t0 = time.perf_counter()
    res = subprocess.run(
        [sys.executable, str(tree / "benchmarks" / script), *args], cwd=tree, env=env, capture_output=True, text=True
    )
    if res.returncode != 0:
        raise SystemExit(f"{script} at {tree.name} failed:\n{res.stderr[-3000:]}")
    return res.stdout, time.perf_counter() - t0


def parse_tables(text: str) -> dict[tuple[str, str], str]:
    """Every markdown table cell, keyed by (row's first cell, column heading)."""
    cells: dict[tuple[str, str], str] = {}
    header: list[str] | None = None
    for line in text.splitlines():
        if not line.startswith("|"):
            header = None
            continue
        row = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = row
        elif not set("".join(row)) <= set("-: "):
            for name, value in zip(header[1:], row[1:]):
                cells[(row[0], name)] = value
    return cells


def _number(cell: str) -> float | None:
    m = NUMBER.search(cell)
    return float(m.group().replace(",", "")) if m else None


def compare_rows(before: str, after: str) -> list[tuple[str, str, str, str]]:
    """(measurement, before, after, after / before) for every cell both outputs hold."""
    b, a = parse_tables(before), parse_tables(after)
    out = []
    for key in b:
        if key not in a:
            continue
        nb, na = _number(b[key]), _number(a[key])
        if nb is None or na is None:
            continue
        label = key[0] if key[1] in ("result",) else f"{key[0]}: {key[1]}"
        ratio = f"{na / nb:.2f}" if nb and na else "-"  # a figure rounded to 0: no ratio
        out.append((label, b[key], a[key], ratio))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", default="ec85660", help="the revision before the refactor")
    ap.add_argument("--head", default="HEAD")
    ap.add_argument("--db-images", type=int, default=100_000)
    ap.add_argument("--db-runs", type=int, default=10)
    ap.add_argument("--per-set", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sizes", nargs="+", default=["512x512"])
    ap.add_argument("--doc", type=Path, default=ROOT / "docs" / "benchmarks.md")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    revs = {"before": _git("rev-parse", "--short", args.base), "after": _git("rev-parse", "--short", args.head)}
    load_start, t_start = os.getloadavg(), time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="spai-before-after-") as tmp:
        trees = {side: Path(tmp) / side for side in revs}
        try:
            for side, rev in revs.items():
                _git("worktree", "add", "--detach", str(trees[side]), rev)
            for side, tree in trees.items():
                print(f"{side} ({revs[side]}) imports:", *check_imports(tree), sep="\n  ", flush=True)
            benches = [
                (
                    "Prediction store",
                    "bench_db.py",
                    lambda side: ["--images", str(args.db_images), "--runs", str(args.db_runs), "--no-write"],
                    1,
                ),
                (
                    "Compare page",
                    "bench_compare.py",
                    lambda side: [
                        "--per-set",
                        str(args.per_set),
                        "--repeats",
                        str(args.repeats),
                        "--db",
                        str(Path(tmp) / f"compare-{side}.db"),
                        "--no-write",
                    ],
                    1,
                ),
                ("Inference, one image", "bench_spai.py", lambda side: ["--sizes", *args.sizes], None),
            ]
            rows, walls = [], []
            for title, script, make_args, threads in benches:
                outs = {}
                for side, tree in trees.items():  # before, then after at once
                    outs[side], wall = run_script(tree, script, make_args(side), threads)
                    walls.append(f"{script} {side} {wall:.0f} s")
                    print(f"{script} {side}: {wall:.0f} s", flush=True)
                rows += [(title, *r) for r in compare_rows(outs["before"], outs["after"])]
        finally:
            for tree in trees.values():
                if tree.exists():
                    _git("worktree", "remove", "--force", str(tree))
    load_end = os.getloadavg()
    text = "\n".join(
        [
            HEADING,
            "",
            f"`python benchmarks/before_after.py --base {args.base}`: revision {revs['before']} "
            f"(before) and {revs['after']} (after), each from its own git worktree with its own "
            "`benchmarks/bench_db.py`, `bench_compare.py` and `bench_spai.py` (this project's side, "
            f"seeded ViT-B/16, CPU), one run each, before right before after, on {os.cpu_count()} "
            f"logical CPUs. Options: bench_db `--images {args.db_images} --runs {args.db_runs}`, "
            f"bench_compare `--per-set {args.per_set} --repeats {args.repeats}`, bench_spai "
            f"`--sizes {' '.join(args.sizes)}`. Load average (1 min) {load_start[0]:.1f} at the "
            f"start, {load_end[0]:.1f} at the end; {time.perf_counter() - t_start:.0f} s in all "
            f"({'; '.join(walls)}). Ratio = after / before (for rates higher is better, for "
            "seconds and GB lower is better). Each side runs its own revision's `bench_spai.py`: "
            "since ec85660 its child process also measures the float32 GEMM rate (4 crops' layer "
            "shapes) before scoring, so the one-image 'whole process' and 'peak RSS' rows include "
            "that extra work on the after side; 'infer' and 's/crop' time the same call on both.",
            "",
            "| benchmark | measurement | before | after | after / before |",
            "|---|---|---:|---:|---:|",
            *[f"| {t} | {m} | {b} | {a} | {r} |" for t, m, b, a, r in rows],
            "",
        ]
    )
    print(text)
    if not args.no_write:
        _report.write_section(HEADING, text, args.doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
