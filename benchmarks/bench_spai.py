"""SPAI inference cost on this machine: seconds per image and peak RSS, full-size ViT-B/16.

Each measurement runs in a fresh process (so peak RSS is that image's alone): build the
full-size model from configs/spai.yaml with seeded random weights (the official checkpoint is not
available here; cost does not depend on the weight values), score one image, report the time of
the forward pass ("infer") and of the whole process, and ru_maxrss.

    python benchmarks/bench_spai.py [--sizes 512x512 1024x768 4000x3000] [--write docs/benchmarks.md]

Official figures on the same kind of machine (the project brief's BASELINE, 2 cores, float32):
1024x768: 33.5 s infer, 2.4 GB; 4000x3000: 457 s, 18.6 GB.
"""

from __future__ import annotations

import _report  # benchmarks/_report.py (the scripts run from this folder)

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OFFICIAL = {"1024x768": (33.5, 2.4), "4000x3000": (457.0, 18.6)}
SECTION = "## SPAI inference (full-size ViT-B/16, CPU)"


def _child(size: str, backend: str) -> None:
    t_start = time.perf_counter()
    import numpy as np
    import torch
    from PIL import Image

    from spai.config import load_config
    from spai.detector import Detector, ModelInfo
    from spai.model import build_model

    w, h = (int(v) for v in size.split("x"))
    rng = np.random.default_rng(0)
    base = np.asarray(Image.open(ROOT / "tests/fixtures/spai-tiny/images/07_photo_640x427.jpg").convert("RGB"))
    img = Image.fromarray(base).resize((w, h), Image.BICUBIC)
    noisy = np.clip(np.asarray(img, dtype=np.int16) + rng.integers(-3, 4, (h, w, 3)), 0, 255)
    img = Image.fromarray(noisy.astype(np.uint8))
    torch.manual_seed(0)
    model = build_model(load_config(ROOT / "configs/spai.yaml"))
    info = ModelInfo("random-vitb16", "", "", "benchmark", {})
    det = Detector(model, info, torch.device("cpu"))
    if backend == "onnx":
        det.use_onnx(Path("/tmp/spai-bench-onnx"))
    t0 = time.perf_counter()
    pred = det.score_one(img)
    infer = time.perf_counter() - t0
    assert pred.ok, pred.error
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"size": size, "backend": backend, "crops": pred.num_patches, "infer_s": infer,
                      "process_s": time.perf_counter() - t_start, "peak_rss_gb": rss / 1e9,
                      "chunk": det.chunk, "threads": torch.get_num_threads(), "score": pred.score}))


def run(size: str, backend: str = "torch") -> dict:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, __file__, "--child", size, "--backend", backend],
                         capture_output=True, text=True, check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["process_s"] = time.perf_counter() - t0
    return res


def to_markdown(rows: list[dict]) -> str:
    lines = [SECTION, "",
             f"Measured by `benchmarks/bench_spai.py` on {os.cpu_count()} cores, float32, seeded random "
             "weights, one image per fresh process. Official figures from the project's BASELINE "
             "(same kind of machine).", "",
             "| image | backend | crops | infer (s) | s/crop | whole process (s) | peak RSS (GB) | official infer (s) | official RSS (GB) | speed-up |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        off = OFFICIAL.get(r["size"])
        speed = f"{off[0] / r['infer_s']:.1f}x" if off else "-"
        lines.append(
            f"| {r['size']} | {r['backend']} | {r['crops']} | {r['infer_s']:.1f} | {r['infer_s'] / r['crops']:.2f} | "
            f"{r['process_s']:.1f} | {r['peak_rss_gb']:.2f} | {off[0] if off else '-'} | {off[1] if off else '-'} | {speed} |")
    return "\n".join(lines) + "\n"


def write_section(path: Path, text: str) -> None:
    """Replace (or append) this benchmark's section in `path`."""
    _report.write_section(SECTION, text, path)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", nargs="+", default=["512x512", "1024x768", "4000x3000"])
    ap.add_argument("--backends", nargs="+", default=["torch"])
    ap.add_argument("--write", type=Path, default=None)
    ap.add_argument("--child", default=None)
    ap.add_argument("--backend", default="torch")
    args = ap.parse_args()
    if args.child:
        _child(args.child, args.backend)
        return
    rows = []
    for size in args.sizes:
        for backend in args.backends:
            rows.append(run(size, backend))
            print(json.dumps(rows[-1]), flush=True)
    md = to_markdown(rows)
    print(md)
    if args.write:
        write_section(args.write, md)


if __name__ == "__main__":
    main()
