"""One image at a time, side by side: this project against the official code on this machine,
one right after the other, same seeded ViT-B/16 checkpoint, same image, float32 on the CPU.

    python benchmarks/bench_spai.py [--sizes 512x512 1024x768 4000x3000] [--write docs/benchmarks.md]

Each side runs as a fresh process (so its peak RSS is that image's alone). This project's child
measures, in the same process: the float32 GEMM rate of the model's own Linear shapes, then the
forward pass of the image ("infer": decode, pad, crops, backbone, aggregation); the floor is the
image's crops x the GEMM FLOPs counted from configs/spai.yaml, over that rate. The official side
is the reference harness's own command (``make_reference.py``; see benchmarks/_official.py);
its "infer call" includes the official ``infer`` command's model build and checkpoint load.
Without the harness only this project's side and its floor ratio are reported.
"""

from __future__ import annotations

import _report  # benchmarks/_report.py (the scripts run from this folder)

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from _official import ROOT, Official, locate, make_checkpoint, official_one_image, run_measured

SECTION = "## SPAI inference, one image (full-size ViT-B/16, CPU), side by side"
CONFIG = ROOT / "configs" / "spai.yaml"
PHOTO = ROOT / "tests" / "fixtures" / "spai-tiny" / "images" / "07_photo_640x427.jpg"


def make_image(size: str, path: Path) -> Path:
    """The fixture photo resized to ``size`` with seeded +-3 noise, as a PNG."""
    import numpy as np
    from PIL import Image

    w, h = (int(v) for v in size.split("x"))
    rng = np.random.default_rng(0)
    img = Image.open(PHOTO).convert("RGB").resize((w, h), Image.BICUBIC)
    noisy = np.clip(np.asarray(img, dtype=np.int16) + rng.integers(-3, 4, (h, w, 3)), 0, 255)
    Image.fromarray(noisy.astype(np.uint8)).save(path, compress_level=1)
    return path


def _child(image: Path, ckpt: Path) -> None:
    """This project's side, in a fresh process: GEMM rate, then one image scored."""
    t_start = time.perf_counter()
    import torch

    from _floor import crop_flops, gemm_rate
    from spai.detector import Detector

    det = Detector.load(ckpt, CONFIG, "cpu")
    rate = gemm_rate(det.config, crops=4, repeats=2)["best"]
    t0 = time.perf_counter()
    pred = det.score_one(image)
    infer = time.perf_counter() - t0
    assert pred.ok, pred.error
    print(
        json.dumps(
            {
                "crops": pred.num_patches,
                "infer_s": infer,
                "score": pred.score,
                "floor_s": pred.num_patches * crop_flops(det.config)["total"] / rate,
                "gemm_gflops": rate / 1e9,
                "chunk": det.chunk,
                "threads": torch.get_num_threads(),
                "child_s": time.perf_counter() - t_start,
                "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9,
            }
        )
    )


def measure(sizes: list[str], work: Path) -> dict:
    official = locate()
    ckpt = work / "vitb16_seed1234.pth"
    made = make_checkpoint(ckpt, official)
    rows = []
    for size in sizes:
        image = make_image(size, work / f"{size}.png")
        m = run_measured([sys.executable, __file__, "--child", str(image), "--ckpt", str(ckpt)])
        row = {
            "size": size,
            **json.loads(m.check("this project").stdout.strip().splitlines()[-1]),
            "process_s": m.wall_s,
        }
        if isinstance(official, Official):
            off = official_one_image(official, ckpt, image, work / f"official-{size}.csv")
            row["official"] = off
            row["score_diff"] = abs(off["score"] - row["score"])
        rows.append(row)
        print(json.dumps(row), flush=True)
    return {
        "rows": rows,
        "checkpoint": made,
        "cpus": os.cpu_count(),
        "load": os.getloadavg()[0],
        "official": None if isinstance(official, Official) else official,
    }


def to_markdown(res: dict) -> str:
    rows = res["rows"]
    threads = rows[0]["threads"] if rows else "-"
    lines = [
        SECTION,
        "",
        "`python benchmarks/bench_spai.py` (run by `benchmarks/run_all.sh`): one image per fresh "
        f"process, seeded ViT-B/16 checkpoint ({res['checkpoint']}), float32, {threads} torch "
        f"threads, {res['cpus']} logical CPUs; this project right before the official code on "
        "the same image. infer = the forward pass of the image (decode, crops, backbone, "
        "aggregation); floor = crops x GEMM FLOPs from configs/spai.yaml / float32 GEMM rate "
        "measured in the same process just before; fraction = floor / infer. Load average at the "
        f"end: {res['load']:.1f}.",
        "",
        "| image | crops | infer (s) | s/crop | GEMM rate (GFLOP/s) | fraction of floor | "
        "whole process (s) | peak RSS (GB) | official whole process (s) | official infer call (s) "
        "| official peak RSS (GB) | speed-up, whole process | score difference |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        off = r.get("official")
        cells = ["-"] * 5
        if off:
            cells = [
                f"{off['process_s']:.1f}",
                f"{off['infer_s']:.1f}" if off["infer_s"] else "-",
                f"{off['peak_rss_gb']:.2f}",
                f"{off['process_s'] / r['process_s']:.2f}x",
                f"{r['score_diff']:.1e}",
            ]
        lines.append(
            f"| {r['size']} | {r['crops']} | {r['infer_s']:.1f} | {r['infer_s'] / r['crops']:.2f} | "
            f"{r['gemm_gflops']:.1f} | {r['floor_s'] / r['infer_s']:.0%} | {r['process_s']:.1f} | "
            f"{r['peak_rss_gb']:.2f} | " + " | ".join(cells) + " |"
        )
    if res["official"]:
        lines += ["", f"The official code was not run: {res['official']}. Only the floor ratio is reported."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", default=["512x512", "1024x768"])
    ap.add_argument("--write", type=Path, default=None, help="replace this section of the file")
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    ap.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--ckpt", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args.child, args.ckpt)
        return
    with tempfile.TemporaryDirectory(prefix="spai-bench-one-") as tmp:
        res = measure(args.sizes, args.work or Path(tmp))
    md = to_markdown(res)
    print(md)
    if args.write:
        _report.write_section(SECTION, md, args.write)


if __name__ == "__main__":
    main()
