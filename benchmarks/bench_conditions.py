"""Time every robustness condition on one 1024x768 RGB image; write docs/benchmarks.md's
"Robustness conditions" section (only that section is replaced).

Usage: OMP_NUM_THREADS=1 python benchmarks/bench_conditions.py [--repeats 5] [--no-write]
"""

from __future__ import annotations

import _report  # benchmarks/_report.py (the scripts run from this folder)

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

from robustness.apply import apply_condition, render  # noqa: E402
from robustness.registry import list_conditions  # noqa: E402

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
HEADING = "## Robustness conditions"
SIZE = (1024, 768)


def test_image() -> Image.Image:
    """Deterministic 1024x768 photo-like RGB image (gradient + texture)."""
    rng = np.random.default_rng(0)
    h, w = SIZE[1], SIZE[0]
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx / w * 255, yy / h * 255, 128 + 60 * np.sin(xx / 37.0)], axis=-1)
    return Image.fromarray(np.clip(base + rng.normal(0, 10, base.shape), 0, 255).astype(np.uint8))


def median_ms(fn, repeats: int) -> float:
    """Median wall time of ``fn()`` in ms over ``repeats`` runs after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def run(repeats: int) -> list[tuple[str, str, float, float]]:
    """(id, family, apply_condition ms, render-to-file-bytes ms) per condition."""
    img = test_image()
    rows = []
    for c in list_conditions():
        a = median_ms(lambda cid=c.id: apply_condition(img, cid, "bench/img.png"), repeats)
        r = median_ms(lambda cid=c.id: render(img, cid, "bench/img.png"), repeats)
        rows.append((c.id, c.family, a, r))
    return rows


def section(rows: list[tuple[str, str, float, float]], repeats: int) -> str:
    """The markdown section."""
    cpu = platform.processor() or platform.machine()
    lines = [
        HEADING,
        "",
        f"`python benchmarks/bench_conditions.py` - one {SIZE[0]}x{SIZE[1]} RGB image, median of "
        f"{repeats} runs after a warm-up, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')},"
        f" {cpu}, {os.cpu_count()} logical CPUs (shared with other jobs while measured),"
        " Python " + platform.python_version() + ".",
        "`apply` = `apply_condition` (in memory; lossy formats encoded and decoded, PNG not "
        "encoded); `file bytes` = `render`, i.e. what `derive_file` writes (includes the PNG/JPEG/"
        "WebP encoding).",
        "",
        "| condition | family | apply (ms) | file bytes (ms) |",
        "|---|---|---:|---:|",
    ]
    lines += [f"| `{cid}` | {fam} | {a:.1f} | {r:.1f} |" for cid, fam, a, r in rows]
    return "\n".join(lines) + "\n"


def write_section(text: str) -> None:
    _report.write_section(HEADING, text, DOC)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--no-write", action="store_true", help="print only")
    args = p.parse_args()
    text = section(run(args.repeats), args.repeats)
    print(text)
    if not args.no_write:
        write_section(text)


if __name__ == "__main__":
    main()
