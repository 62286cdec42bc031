"""Score page overhead: time from upload to score on the page vs the model's own scoring time.

    OMP_NUM_THREADS=1 python benchmarks/bench_score_page.py [--weights W --cfg C] [--repeats 5]

Runs the real page under ``streamlit.testing.v1.AppTest`` on a temporary store with the given
model (default: the tiny test fixture), uploads a 1024x768 PNG and measures the script run that
scores it; then ``Detector.score_one`` on the same bytes. Prints a Markdown table row.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default=str(FIXTURE / "spai_tiny_seed0.pth"))
    ap.add_argument("--cfg", default=str(FIXTURE / "spai_tiny.yaml"))
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-score-"))
    os.environ.update(DATABASE_URL=f"sqlite:///{tmp / 'spai.db'}", SPAI_START_WORKER="0",
                      SPAI_DATA_DIR=str(tmp / "data"), SPAI_MODEL_WEIGHTS=args.weights,
                      SPAI_MODEL_CFG=args.cfg or "")
    sys.path.insert(0, str(REPO))
    from streamlit.testing.v1 import AppTest

    from spai.detector import Detector

    data = _image_bytes()
    det = Detector.load(args.weights, cfg=args.cfg or None, device="cpu")
    det.score_one(data)  # warm-up
    model_s = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        det.score_one(data)
        model_s.append(time.perf_counter() - t0)
    page_s = []
    for i in range(args.repeats + 1):
        at = AppTest.from_file(str(REPO / "dashboard" / "app.py"), default_timeout=600).run()
        # new bytes each time (a changed pixel) so the page cannot reuse a cached prediction
        img = Image.open(io.BytesIO(data))
        img.putpixel((0, 0), (i, 0, 0))
        buf = io.BytesIO()
        img.save(buf, "PNG")
        at.file_uploader(key="score.uploads").set_value([("bench.png", buf.getvalue(),
                                                          "image/png")])
        t0 = time.perf_counter()
        at.run()
        elapsed = time.perf_counter() - t0
        assert not at.exception and len(at.metric) == 1, "the page did not show a score"
        if i:  # the first run also loads the model into the cache
            page_s.append(elapsed)
    m, p = statistics.median(model_s), statistics.median(page_s)
    print("| model | image | score_one (s) | page run, upload -> score shown (s) | overhead (s) |")
    print("|---|---|---:|---:|---:|")
    print(f"| {Path(args.weights).name} | 1024x768 PNG | {m:.3f} | {p:.3f} | {p - m:.3f} |")


if __name__ == "__main__":
    main()
