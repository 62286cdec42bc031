"""Local vs Ray executor on the same images: images per second and overhead per job.

Builds N images (seeded 256x256 crops of the fixture photos), registers them as image sets in a
fresh SQLite store, and runs infer jobs through the real worker (in this process, so the Ray
connection and the local detector cache are made once, as in a long-running worker):

- a warm-up job per executor (the local detector cache; Ray's first worker processes), whose
  time is reported as the first job;
- per executor, a job on the first ``--small`` images and one on all N images.

Per-image time is the slope between the two jobs, ``(T_N - T_small) / (N - small)``; the
overhead per job is the intercept ``T_small - small * slope`` (for Ray: actor start and model
load in every actor, dataset setup; for local with a warm cache: the store round trips).
Job times are the job rows' started_at -> finished_at.

    python benchmarks/bench_executors.py [--images 200] [--weights ...] [--write docs/benchmarks.md]

Uses the demo model (weights/demo/spai_demo.pth) when it exists, else the tiny test model.
"""

from __future__ import annotations

import _report  # benchmarks/_report.py (the scripts run from this folder)

import argparse
import json
import os
import shutil
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Executors (local vs Ray)"
DEMO = ROOT / "weights" / "demo" / "spai_demo.pth"
TINY = ROOT / "tests" / "fixtures" / "spai-tiny"
CROP = 256  # px, square crops of the fixture photos


def make_images(folder: Path, n: int, seed: int = 0) -> list[Path]:
    """``n`` seeded CROP x CROP PNG crops of the fixture images (all at least CROP px)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    sources = [
        Image.open(p).convert("RGB") for p in sorted((TINY / "images").iterdir()) if p.suffix in (".png", ".jpg")
    ]
    sources = [im for im in sources if min(im.size) >= CROP]
    folder.mkdir(parents=True)
    out = []
    for i in range(n):
        im = sources[i % len(sources)]
        x = int(rng.integers(0, im.width - CROP + 1))
        y = int(rng.integers(0, im.height - CROP + 1))
        path = folder / f"{i:04d}.png"
        im.crop((x, y, x + CROP, y + CROP)).save(path)
        out.append(path)
    return out


def _subset(files: list[Path], folder: Path) -> Path:
    folder.mkdir(parents=True)
    for f in files:
        os.link(f, folder / f.name)
    return folder


def job_seconds(url: str, job_id: int) -> float:
    from db import jobs
    from db.session import session_scope

    with session_scope(url, readonly=True) as s:
        v = jobs.get_job(s, job_id)
    assert v.status == "done", (v.status, v.traceback)
    return (v.finished_at - v.started_at).total_seconds()


def run_job(url: str, model_id: int, set_id: int, executor: str) -> float:
    from jobs.worker import JobWorker, WorkerConfig
    from db import jobs
    from db.session import session_scope

    with session_scope(url) as s:
        job_id = jobs.enqueue(
            s,
            "infer",
            {"model_id": model_id, "imageset_id": set_id, "batch_size": 8, "device": "cpu", "executor": executor},
        )
    JobWorker(WorkerConfig(once=True, heartbeat_seconds=1.0), url=url).serve()
    return job_seconds(url, job_id)


def bench(n: int, small: int, weights: Path, cfg: Path | None, num_cpus: int) -> dict:
    import ray
    import torch

    from dashboard import jobqueue
    from jobs.executors.ray import runtime_env
    from db.imagesets import register_folder
    from db.session import session_scope

    default_threads = torch.get_num_threads()
    variants = {  # label -> (executor, torch threads in this process)
        f"local, {default_threads} torch threads": ("local", default_threads),
        "local, 1 torch thread": ("local", 1),
        f"ray, {num_cpus} actors x 1 thread": ("ray", default_threads),
    }
    tmp = Path(tempfile.mkdtemp(prefix="spai-bench-exec-"))
    try:
        url = f"sqlite:///{tmp / 'spai.db'}"
        files = make_images(tmp / "all", n)
        folders = {}
        for i, label in enumerate(["warm-local", "warm-ray", *variants]):
            folders[f"{i}-small"] = (label, _subset(files[:small], tmp / f"{i}-small"))
            folders[f"{i}-all"] = (label, _subset(files, tmp / f"{i}-all"))
        with session_scope(url) as s:
            ids = {
                (label, k.split("-")[1]): register_folder(s, f, name=k, kind="fake").imageset_ids[k]
                for k, (label, f) in folders.items()
            }
            model_id = jobqueue.register_model(s, weights, name=weights.stem, cfg=cfg)
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        t0 = time.perf_counter()
        ray.init(num_cpus=num_cpus, include_dashboard=False, runtime_env=runtime_env(), log_to_driver=False)
        ray_start = time.perf_counter() - t0
        try:
            warm = {ex: run_job(url, model_id, ids[(f"warm-{ex}", "small")], ex) for ex in ("local", "ray")}
            res: dict = {
                "images": n,
                "small": small,
                "model": weights.name,
                "cpus": num_cpus,
                "ray_start_s": ray_start,
                "first_job_s": warm,
                "rows": {},
            }
            for label, (ex, threads) in variants.items():
                torch.set_num_threads(threads)
                t_small = run_job(url, model_id, ids[(label, "small")], ex)
                t_all = run_job(url, model_id, ids[(label, "all")], ex)
                slope = (t_all - t_small) / (n - small)
                res["rows"][label] = {
                    "job_small_s": t_small,
                    "job_all_s": t_all,
                    "images_per_s": n / t_all,
                    "steady_images_per_s": 1 / slope,
                    "overhead_s": t_small - small * slope,
                }
                print(json.dumps({label: res["rows"][label]}), flush=True)
            torch.set_num_threads(default_threads)
        finally:
            ray.shutdown()
        return res
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def to_markdown(r: dict) -> str:
    import torch

    intro = (
        f"Measured by `benchmarks/bench_executors.py` on this project's {os.cpu_count()}-core "
        f"CPU machine (shared with other jobs, so expect noise), model `{r['model']}`, "
        f"{r['images']} images of {CROP}x{CROP} px, batch 8, "
        f"torch {torch.__version__.split('+')[0]}. Local Ray started in-process with "
        f"`num_cpus={r['cpus']}` ({r['ray_start_s']:.1f} s, once per worker process, not per "
        "job); Ray runs one 1-CPU actor per CPU. Job time is the job row's start to finish; "
        f"per-image time is the slope between a {r['small']}-image job and the "
        f"{r['images']}-image job, overhead the intercept."
    )
    first = (
        f"First job on {r['small']} images (cold: model load, Ray worker processes): local "
        f"{r['first_job_s']['local']:.1f} s, Ray {r['first_job_s']['ray']:.1f} s."
    )
    header = (
        "| executor | job, all images (s) | images/s (whole job) | images/s (steady) "
        f"| job, {r['small']} images (s) | overhead per job (s) |"
    )
    lines = [
        SECTION,
        "",
        textwrap.fill(intro, 100),
        "",
        textwrap.fill(first, 100),
        "",
        header,
        "|---|---|---|---|---|---|",
    ]
    for label, e in r["rows"].items():
        lines.append(
            f"| {label} | {e['job_all_s']:.1f} | {e['images_per_s']:.2f} | "
            f"{e['steady_images_per_s']:.2f} | {e['job_small_s']:.1f} | "
            f"{e['overhead_s']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def write_section(path: Path, text: str) -> None:
    """Replace (or append) this benchmark's section in `path`."""
    _report.write_section(SECTION, text, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--small", type=int, default=8, help="images in the short job (intercept)")
    ap.add_argument("--weights", type=Path, default=DEMO if DEMO.exists() else TINY / "spai_tiny_seed0.pth")
    ap.add_argument(
        "--cfg", type=Path, default=None, help="model config (default: the tiny model's, or the weights' sidecar)"
    )
    ap.add_argument("--num-cpus", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--write", type=Path, default=None)
    args = ap.parse_args()
    if args.small >= args.images:
        ap.error("--small must be below --images")
    cfg = args.cfg
    if cfg is None and args.weights.parent == TINY:
        cfg = TINY / "spai_tiny.yaml"
    res = bench(args.images, args.small, args.weights, cfg, args.num_cpus)
    md = to_markdown(res)
    print(md)
    if args.write:
        write_section(args.write, md)


if __name__ == "__main__":
    main()
