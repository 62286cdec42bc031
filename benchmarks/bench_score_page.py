"""Score page overhead: time from upload to score on the page vs the model's own scoring time.

    python benchmarks/bench_score_page.py [--weights W --cfg C] [--repeats 5] [--no-write]

Runs the real page under ``streamlit.testing.v1.AppTest`` on a temporary store with the given
model (default: the tiny test fixture), uploads a 1024x768 PNG and measures the script run that
scores it; then ``Detector.score_one`` on the same bytes. Writes the "Dashboard Score page"
section of docs/benchmarks.md (one row per model; ``--no-write`` only prints it), with the
machine's load average, since a loaded machine slows both figures.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

import _report  # benchmarks/_report.py (the scripts run from this folder)

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "spai-tiny"


def _image_bytes(width: int = 1024, height: int = 768) -> bytes:
    """A deterministic, photo-like 1024x768 PNG (smooth gradients plus noise)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width] / max(width, height)
    base = np.stack([np.sin(6 * xx + 1), np.cos(5 * yy), np.sin(4 * (xx + yy))], axis=2)
    arr = np.clip(127 + 90 * base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr, "RGB").save(buf, "PNG")
    return buf.getvalue()


def _in_a_thread(fn, times: list[float]) -> None:
    """Time ``fn()`` in a new thread: Streamlit runs page scripts outside the main thread, and
    torch's CPU thread pool behaves differently there (on a busy machine, much faster)."""

    def timed() -> None:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)

    worker = threading.Thread(target=timed)
    worker.start()
    worker.join()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default=str(FIXTURE / "spai_tiny_seed0.pth"))
    ap.add_argument("--cfg", default=str(FIXTURE / "spai_tiny.yaml"))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-write", action="store_true", help="print, do not write the doc")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-score-"))
    os.environ.update(
        DATABASE_URL=f"sqlite:///{tmp / 'spai.db'}",
        SPAI_START_WORKER="0",
        SPAI_DATA_DIR=str(tmp / "data"),
        SPAI_MODEL_WEIGHTS=args.weights,
        SPAI_MODEL_CFG=args.cfg or "",
    )
    from streamlit.testing.v1 import AppTest

    from spai.detector import Detector

    data = _image_bytes()
    det = Detector.load(args.weights, cfg=args.cfg or None, device="cpu")
    det.score_one(data)  # warm-up
    model_s, page_s = [], []
    for i in range(args.repeats + 1):  # interleaved, so both see the same machine load
        _in_a_thread(lambda: det.score_one(data), model_s)  # as the page: not the main thread
        at = AppTest.from_file(str(REPO / "dashboard" / "app.py"), default_timeout=600).run()
        at.switch_page("views/score.py").run()  # the start page is the default
        # new bytes each time (a changed pixel) so the page cannot reuse a cached prediction
        img = Image.open(io.BytesIO(data))
        img.putpixel((0, 0), (i, 0, 0))
        buf = io.BytesIO()
        img.save(buf, "PNG")
        at.file_uploader(key="score.uploads").set_value([("bench.png", buf.getvalue(), "image/png")])
        t0 = time.perf_counter()
        at.run()
        elapsed = time.perf_counter() - t0
        assert not at.exception and len(at.metric) == 1, "the page did not show a score"
        if i:  # the first run also loads the model into the cache
            page_s.append(elapsed)
    m, p = statistics.median(model_s), statistics.median(page_s)
    row = f"| {Path(args.weights).name} | 1024x768 PNG | {m:.3f} | {p:.3f} | {p - m:.3f} | {os.getloadavg()[0]:.1f} |"
    print(row)
    if not args.no_write:
        _report.write_section(HEADING, _section(row))


HEADING = "## Dashboard Score page"
TABLE_HEAD = (
    "| model | image | score_one (s) | page run, upload -> everything shown (s) "
    "| overhead (s) | load average (2 cores) |\n|---|---|---:|---:|---:|---:|"
)


def _section(row: str) -> str:
    """The section with this model's row added to (or replacing) the rows already there."""
    import torch

    old = _report.DOC.read_text(encoding="utf-8") if _report.DOC.exists() else ""
    body = old.split(HEADING, 1)[1].split("\n## ", 1)[0] if HEADING in old else ""
    model = row.split("|")[1]
    rows = [
        r
        for r in body.splitlines()
        if r.startswith("| ")
        and r.count("|") == row.count("|")
        and not r.startswith("| model")
        and r.split("|")[1] != model
    ]
    return "\n".join(
        [
            HEADING,
            "",
            "`python benchmarks/bench_score_page.py [--weights W]` - the real Score "
            "page under `streamlit.testing.v1.AppTest` (temporary SQLite store), a 1024x768 PNG "
            "uploaded; median of the page runs after a warm-up run that loads the model, against "
            "the median of `Detector.score_one` calls on the same bytes. The page run ends when "
            "everything is drawn (score, verdict, overlay, patch grid); the score itself is shown "
            "before the overlay and grid are built. Each upload is decoded once per session. "
            f"CPU, {os.cpu_count()} logical cores, {torch.get_num_threads()} torch threads; the load average at the end of "
            f"the run says how busy the machine was (above {os.cpu_count()}: other jobs shared the cores).",
            "",
            TABLE_HEAD,
            *rows,
            row,
        ]
    )


if __name__ == "__main__":
    main()
