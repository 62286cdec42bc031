"""Many-image throughput, side by side: this project's ``python -m spai infer`` (crops batched
across images) against the official ``infer`` at its best ``--batch-size``, one right after the
other on this machine, same seeded ViT-B/16 checkpoint, same images.

    python benchmarks/bench_many.py [--images 200] [--probe 24] [--official-batch-sizes 1 4 16]
                                    [--write docs/benchmarks.md]

The images are made here, deterministically: 512x512 crops (seeded positions, flips and +-3
noise) of the fixture's photo and synthetic image, upscaled. The official batch size is chosen
on the first ``--probe`` images (each size tried once), then run on all of them. Both sides are
timed as whole processes (interpreter start, imports, model load included). The floor: the
crops' GEMM FLOPs (from configs/spai.yaml) over the float32 GEMM rate this process measures
right before each side runs. Without the reference harness only this project's side is run.
"""

from __future__ import annotations

import _report  # benchmarks/_report.py (the scripts run from this folder)

import argparse
import csv
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from _floor import crop_flops, gemm_rate
from _official import ROOT, Official, locate, make_checkpoint, official_many, run_measured
from spai.config import load_config

SECTION = "## Many images (512x512, ViT-B/16, CPU), side by side"
FIXTURE = ROOT / "tests" / "fixtures" / "spai-tiny" / "images"
CONFIG = ROOT / "configs" / "spai.yaml"
SIZE = 512


def make_images(folder: Path, n: int, seed: int = 0) -> list[Path]:
    """``n`` deterministic SIZE x SIZE PNGs in ``folder`` (crops of upscaled fixture images)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sources = []
    for name, scale in (("07_photo_640x427.jpg", 2.0), ("03_rgb_1024x768.png", 1.0)):
        img = Image.open(FIXTURE / name).convert("RGB")
        sources.append(np.asarray(img.resize((int(img.width * scale), int(img.height * scale)), Image.BICUBIC)))
    paths = []
    for i in range(n):
        src = sources[i % len(sources)]
        top = int(rng.integers(0, src.shape[0] - SIZE + 1))
        left = int(rng.integers(0, src.shape[1] - SIZE + 1))
        crop = src[top : top + SIZE, left : left + SIZE].astype(np.int16)
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        crop = np.clip(crop + rng.integers(-3, 4, crop.shape), 0, 255).astype(np.uint8)
        path = folder / f"img_{i:04d}.png"
        Image.fromarray(crop).save(path, compress_level=1)
        paths.append(path)
    return paths


def _subset(paths: list[Path], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for p in paths:
        (folder / p.name).write_bytes(p.read_bytes())
    return folder


def ours(image_dir: Path, ckpt: Path, out: Path, batch_size: int | None, backend: str = "torch") -> dict:
    """``python -m spai infer`` on the folder as a whole process; its scores."""
    cmd = [
        sys.executable,
        "-m",
        "spai",
        "infer",
        "-i",
        str(image_dir),
        "-m",
        str(ckpt),
        "--cfg",
        str(CONFIG),
        "-o",
        str(out),
        "--device",
        "cpu",
        "--backend",
        backend,
    ]
    if batch_size is not None:
        cmd += ["--batch-size", str(batch_size)]
    m = run_measured(cmd).check("python -m spai infer")
    with open(out / f"{image_dir.name}.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    bad = [r for r in rows if r["error"]]
    if bad:
        raise RuntimeError(f"{len(bad)} images failed: {bad[0]['error']}")
    return {
        "backend": backend,
        "process_s": m.wall_s,
        "peak_rss_gb": m.peak_rss_bytes / 1e9,
        "images": len(rows),
        "scores": {r["image"]: float(r["spai"]) for r in rows},
    }


def decode_seconds(paths: list[Path], ckpt: Path) -> float:
    """Mean seconds to decode and pad one image (``Detector.prepare_image``), in this process."""
    import time

    from spai.detector import Detector

    det = Detector.load(ckpt, CONFIG, "cpu")
    t0 = time.perf_counter()
    for p in paths:
        det.prepare_image(p)
    return (time.perf_counter() - t0) / len(paths)


def _floor_s(crops: int) -> tuple[float, float]:
    """(seconds of the floor for ``crops`` crops, GEMM rate in FLOP/s) measured now."""
    cfg = load_config(CONFIG)
    rate = gemm_rate(cfg, crops=4, repeats=2)["best"]
    return crops * crop_flops(cfg)["total"] / rate, rate


def measure(n: int, probe: int, official_sizes: list[int], work: Path, our_probe_b1: bool, backends: list[str]) -> dict:
    official = locate()
    ckpt = work / "vitb16_seed1234.pth"
    made = make_checkpoint(ckpt, official)
    paths = make_images(work / "many", n)
    crops_per_image = 4  # 512x512: a 2x2 grid of 224 crops (MINIMUM_PATCHES 4)
    res: dict = {
        "images": n,
        "probe": probe,
        "checkpoint": made,
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "official": None if isinstance(official, Official) else official,
    }
    res["decode_s"] = decode_seconds(paths, ckpt)
    res["ours"] = []
    for backend in backends:
        floor_s, rate = _floor_s(n * crops_per_image)
        res["ours"].append(
            {
                **ours(work / "many", ckpt, work / f"out-ours-{backend}", None, backend),
                "floor_s": floor_s,
                "gemm_gflops": rate / 1e9,
            }
        )
    if our_probe_b1:
        probe_dir = _subset(paths[:probe], work / "probe")
        res["ours_probe_b1"] = ours(probe_dir, ckpt, work / "out-ours-b1", 1)
    if isinstance(official, Official):
        probe_dir = _subset(paths[:probe], work / "probe")
        tried = []
        for b in official_sizes:
            r = official_many(official, ckpt, probe_dir, b, work / f"official-probe-b{b}.csv")
            tried.append({k: r[k] for k in ("batch_size", "infer_s", "process_s", "peak_rss_gb")})
        best = min(tried, key=lambda t: t["process_s"])["batch_size"]
        floor_s, rate = _floor_s(n * crops_per_image)
        off = official_many(official, ckpt, work / "many", best, work / "official-all.csv")
        diff = max(abs(o["scores"][k] - v) for o in res["ours"] for k, v in off["scores"].items())
        res["official_run"] = {
            **{k: off[k] for k in ("batch_size", "infer_s", "process_s", "peak_rss_gb", "commit", "images")},
            "floor_s": floor_s,
            "gemm_gflops": rate / 1e9,
            "tried": tried,
            "max_score_diff": diff,
        }
    res["load"] = os.getloadavg()[0]
    for o in res["ours"]:
        o.pop("scores")
    res.get("ours_probe_b1", {}).pop("scores", None)
    return res


def to_markdown(r: dict) -> str:
    n = r["images"]
    crops = 4 * n
    lines = [
        SECTION,
        "",
        f"`python benchmarks/bench_many.py --images {n} --probe {r['probe']}` (run by "
        "`benchmarks/run_all.sh`): "
        f"{n} deterministic 512x512 PNGs (4 crops each), seeded ViT-B/16 checkpoint "
        f"({r['checkpoint']}), float32, {r['threads']} torch threads, {r['cpus']} logical CPUs "
        f"({r['machine']}). Whole processes, one right after the other. Floor: {crops} crops x "
        "the GEMM FLOPs counted from configs/spai.yaml, over the float32 GEMM rate measured "
        "in the benchmark process just before that side ran (fraction = floor / time; the "
        "whole process includes start-up, so this is a lower bound; with the onnx backend it "
        "includes the ONNX export too). Load average at the end: "
        f"{r['load']:.1f}.",
        "",
    ]
    lines += [
        "| code | --batch-size | images/s | whole process (s) | s/crop | GEMM rate (GFLOP/s) "
        "| fraction of floor | peak RSS (GB) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for o in r["ours"]:
        lines.append(
            f"| this project, {o['backend']} | default (one chunk) | {n / o['process_s']:.3f} | "
            f"{o['process_s']:.1f} | {o['process_s'] / crops:.2f} | {o['gemm_gflops']:.1f} | "
            f"{o['floor_s'] / o['process_s']:.0%} | {o['peak_rss_gb']:.2f} |"
        )
    off = r.get("official_run")
    if off:
        lines.append(
            f"| official | {off['batch_size']} (best tried) | {n / off['process_s']:.3f} | "
            f"{off['process_s']:.1f} | {off['process_s'] / crops:.2f} | "
            f"{off['gemm_gflops']:.1f} | {off['floor_s'] / off['process_s']:.0%} | "
            f"{off['peak_rss_gb']:.2f} |"
        )
        ratios = [(o["backend"], off["process_s"] / o["process_s"]) for o in r["ours"]]
        said = ", ".join(f"{b} backend {x:.2f}x" for b, x in ratios)
        best = max(x for _, x in ratios)
        lines += [
            "",
            f"**This project / official, images/s: {said}** (goal: 1.5x; "
            f"{'met' if best >= 1.5 else 'not met'}). Largest score difference between this "
            f"project (either backend) and the official code on the {n} images: {off['max_score_diff']:.1e}. Official commit "
            f"{off['commit'][:12]}.",
            "",
            f"Official batch sizes tried on the first {r['probe']} images (whole process):",
            "",
            "| official --batch-size | whole process (s) | infer call (s) | peak RSS (GB) |",
            "|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {t['batch_size']} | {t['process_s']:.1f} | {t['infer_s']:.1f} | {t['peak_rss_gb']:.2f} |"
            for t in off["tried"]
        ]
    else:
        lines += ["", f"The official code was not run: {r['official']}. Only the floor ratio is reported."]
    per_image = min(o["process_s"] for o in r["ours"]) / n
    lines += [
        "",
        f"Decoding and padding one image (`Detector.prepare_image`, measured in the benchmark "
        f"process): {r['decode_s'] * 1000:.1f} ms, {r['decode_s'] / per_image:.1%} of this "
        "project's time per image: the most that decoding the next images in a background "
        "thread while the backbone runs (`spai.batching.score_stream(prefetch=...)`) could save, "
        "so the command line does not use it.",
    ]
    b1 = r.get("ours_probe_b1")
    if b1:
        lines += [
            "",
            f"This project at `--batch-size 1` (one image's 4 crops per backbone pass) on "
            f"the first {r['probe']} images: {b1['process_s']:.1f} s whole process "
            f"({r['probe'] / b1['process_s']:.3f} images/s).",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--probe", type=int, default=24, help="images the official batch sizes are tried on")
    ap.add_argument("--official-batch-sizes", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument(
        "--backends",
        nargs="+",
        default=["torch", "onnx"],
        choices=["torch", "onnx"],
        help="this project's backends to run on all the images",
    )
    ap.add_argument("--no-batch-1", action="store_true", help="skip this project's --batch-size 1 probe")
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    ap.add_argument("--write", type=Path, default=None, help="replace this section of the file")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="spai-bench-many-") as tmp:
        work = args.work or Path(tmp)
        res = measure(
            args.images,
            min(args.probe, args.images),
            args.official_batch_sizes,
            work,
            not args.no_batch_1,
            args.backends,
        )
    print(json.dumps(res))
    md = to_markdown(res)
    print(md)
    if args.write:
        _report.write_section(SECTION, md, args.write)


if __name__ == "__main__":
    main()
