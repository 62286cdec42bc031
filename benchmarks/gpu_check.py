"""GPU check: what a CUDA machine runs once to measure this project on a GPU (under 5 minutes).

    bash benchmarks/gpu_check.sh                 # from the repository root, with the venv
    bash benchmarks/gpu_check.sh --cpu-dry-run   # no GPU: every step, tiny, on the CPU

Steps (each result goes into the "GPU check" section of docs/benchmarks.md):

1. Parity: the tiny fixture model (tests/fixtures/spai-tiny) scores its 8 images on the device;
   every score within 1e-5 of expected_scores.csv (the official code's scores).
2. Throughput: ``--images`` images of ``--size`` x ``--size`` px, cut from the fixture photo
   (seeded crops of an upscaled copy, flipped at random), scored with ``Detector.score_batch``
   ``--batch`` images at a time (crops batched across images), float32 then under
   ``torch.autocast`` (float16 on CUDA); images per second, peak GPU memory, and the largest
   score difference between the two (autocast's drift). The model is the full-size ViT-B/16
   (configs/spai.yaml) with seeded random weights, or weights/spai.pth when present.
3. Training: ``--train-steps`` optimiser steps of that model on random 224 px views with
   torch.amp (autocast + GradScaler); seconds per step, peak memory, the losses are finite.

Without CUDA it exits with status 2 and says so, unless ``--cpu-dry-run``: then the same steps
run on the CPU with the tiny fixture model in place of ViT-B, a few images, and the figures are
labelled a dry run (written only where ``--doc`` says, never into docs/benchmarks.md by default).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from pathlib import Path

import _report  # benchmarks/_report.py (the scripts run from this folder)

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "spai-tiny"
PHOTO = FIXTURE / "images" / "07_photo_640x427.jpg"
HEADING = "## GPU check"
PARITY_TOL = 1e-5
NO_CUDA = (
    "no CUDA device: this script measures a GPU. Run it on a machine with one "
    "(`bash benchmarks/gpu_check.sh`), or check the script itself on the CPU with "
    "`bash benchmarks/gpu_check.sh --cpu-dry-run`."
)


def parity(device: str) -> dict:
    """The fixture model's scores on ``device`` against the official code's."""
    from spai.detector import Detector

    det = Detector.load(FIXTURE / "spai_tiny_seed0.pth", FIXTURE / "spai_tiny.yaml", device)
    with open(FIXTURE / "expected_scores.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    preds = det.score_batch([FIXTURE / "images" / r["image"] for r in rows])
    diffs = [abs(p.score - float(r["score"])) for p, r in zip(preds, rows)]
    return {"images": len(rows), "max_abs_diff": max(diffs), "ok": max(diffs) < PARITY_TOL}


def make_images(n: int, size: int) -> list:
    """``n`` seeded size x size RGB crops of the upscaled fixture photo."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    photo = Image.open(PHOTO).convert("RGB")
    scale = max(2.0, 1.25 * size / min(photo.size))
    big = photo.resize((round(photo.width * scale), round(photo.height * scale)), Image.BICUBIC)
    out = []
    for _ in range(n):
        x = int(rng.integers(0, big.width - size + 1))
        y = int(rng.integers(0, big.height - size + 1))
        crop = big.crop((x, y, x + size, y + size))
        out.append(crop.transpose(Image.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else crop)
    return out


def build_detector(device: str, dry_run: bool):
    """The measured model: the tiny fixture (dry run), weights/spai.pth, or a seeded ViT-B."""
    import torch

    from spai.config import load_config
    from spai.detector import Detector, ModelInfo
    from spai.model import build_model
    from spai.weights import OFFICIAL_WEIGHTS

    if dry_run:
        return Detector.load(FIXTURE / "spai_tiny_seed0.pth", FIXTURE / "spai_tiny.yaml", device)
    if OFFICIAL_WEIGHTS.is_file():
        return Detector.load(OFFICIAL_WEIGHTS, ROOT / "configs" / "spai.yaml", device)
    torch.manual_seed(1234)
    model = build_model(load_config(ROOT / "configs" / "spai.yaml"))
    return Detector(model, ModelInfo("random ViT-B/16 (seed 1234)", "", "", "benchmark", {}), torch.device(device))


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def _peak_reset(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()


def _peak_gb(device: str) -> float | None:
    import torch

    return torch.cuda.max_memory_allocated() / 1e9 if device == "cuda" else None


def throughput(det, images: list, batch: int, device: str, amp: bool) -> dict:
    """Images per second through ``score_batch`` (after one warm-up batch), with or without
    autocast; the scores, for the drift."""
    import torch

    dtype = torch.float16 if device == "cuda" else torch.bfloat16
    scores: list[float] = []

    def run(items: list) -> list:
        with torch.autocast(device, dtype=dtype, enabled=amp):
            return det.score_batch(items)

    run(images[:batch])  # warm-up: kernels, allocator
    _sync(device)
    _peak_reset(device)
    t0 = time.perf_counter()
    for start in range(0, len(images), batch):
        preds = run(images[start : start + batch])
        bad = [p.error for p in preds if not p.ok]
        if bad:
            raise RuntimeError(f"scoring failed: {bad[0]}")
        scores += [p.score for p in preds]
    _sync(device)
    seconds = time.perf_counter() - t0
    return {
        "images": len(images),
        "seconds": seconds,
        "images_per_s": len(images) / seconds,
        "peak_gb": _peak_gb(device),
        "scores": scores,
    }


def train_steps(det, steps: int, batch: int, device: str) -> dict:
    """``steps`` optimiser steps on random 224 px views with torch.amp (CUDA: autocast float16
    and GradScaler; CPU: both off)."""
    import torch

    model = det.model
    model.train()
    model.freeze_backbone(False)  # the heaviest case: gradients through the backbone too
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    on_cuda = device == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=on_cuda)
    gen = torch.Generator().manual_seed(0)
    size = det.model.img_size
    losses = []
    _peak_reset(device)
    t0 = None
    for step in range(steps + 1):  # step 0 is a warm-up, not timed
        if step == 1:
            _sync(device)
            t0 = time.perf_counter()
        x = torch.rand(batch, 3, size, size, generator=gen).to(device)
        y = torch.randint(0, 2, (batch,), generator=gen).float().to(device)
        with torch.autocast(device, dtype=torch.float16, enabled=on_cuda):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        losses.append(float(loss.detach()))
    _sync(device)
    seconds = time.perf_counter() - t0
    model.eval()
    return {
        "steps": steps,
        "batch": batch,
        "s_per_step": seconds / steps,
        "peak_gb": _peak_gb(device),
        "losses_finite": all(math.isfinite(v) for v in losses),
    }


def section(res: dict) -> str:
    """The docs/benchmarks.md section for these results."""
    p, f, a, t = res["parity"], res["fp32"], res["amp"], res["train"]
    gb = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    label = (
        "**CPU dry run** (no GPU: the tiny fixture model stands in for ViT-B; these are not GPU figures)"
        if res["dry_run"]
        else f"{res['device_name']}"
    )
    return "\n".join(
        [
            HEADING,
            "",
            f"`bash benchmarks/gpu_check.sh` on {label}; torch {res['torch']}, CUDA build "
            f"{res['cuda'] or '-'}; model: {res['model']}; {res['total_s']:.0f} s in all.",
            "",
            "| check | result |",
            "|---|---|",
            f"| fixture parity ({p['images']} images, tolerance {PARITY_TOL:g}) | "
            f"{'ok' if p['ok'] else 'FAILED'}, largest difference {p['max_abs_diff']:.2e} |",
            f"| throughput, float32 ({f['images']} images of {res['size']}x{res['size']}, "
            f"{res['batch']} per batch) | {f['images_per_s']:.1f} images/s, peak {gb(f['peak_gb'])} GB |",
            f"| throughput, autocast {res['amp_dtype']} | {a['images_per_s']:.1f} images/s, "
            f"peak {gb(a['peak_gb'])} GB |",
            f"| autocast score drift (largest absolute difference) | {res['drift']:.2e} |",
            f"| training with torch.amp ({t['steps']} steps, batch {t['batch']}, backbone trained) "
            f"| {t['s_per_step']:.3f} s/step, peak {gb(t['peak_gb'])} GB, losses finite: "
            f"{t['losses_finite']} |",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--cpu-dry-run",
        action="store_true",
        help="no GPU: run every step small on the CPU (figures labelled a dry run)",
    )
    ap.add_argument("--images", type=int, help="images for throughput (default 200; dry run 4)")
    ap.add_argument("--size", type=int, default=512, help="image side in px (default 512)")
    ap.add_argument("--batch", type=int, default=16, help="images per score_batch call")
    ap.add_argument("--train-steps", type=int, help="timed training steps (default 20; dry 2)")
    ap.add_argument(
        "--doc",
        type=Path,
        help="file to write the section into (default: docs/benchmarks.md on a GPU; none in a dry run)",
    )
    args = ap.parse_args(argv)
    import torch

    dry = args.cpu_dry_run
    if not dry and not torch.cuda.is_available():
        print(f"gpu_check: {NO_CUDA}", file=sys.stderr)
        return 2
    device = "cpu" if dry else "cuda"
    n_images = args.images or (4 if dry else 200)
    steps = args.train_steps or (2 if dry else 20)
    t0 = time.perf_counter()
    res: dict = {
        "dry_run": dry,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device_name": torch.cuda.get_device_name() if not dry else "CPU",
        "size": args.size,
        "batch": args.batch,
        "amp_dtype": "float16" if device == "cuda" else "bfloat16",
    }
    print("parity ...", file=sys.stderr)
    res["parity"] = parity(device)
    det = build_detector(device, dry)
    res["model"] = det.info.name
    images = make_images(n_images, args.size)
    print(f"throughput on {n_images} images ...", file=sys.stderr)
    res["fp32"] = throughput(det, images, args.batch, device, amp=False)
    res["amp"] = throughput(det, images, args.batch, device, amp=True)
    res["drift"] = max(abs(a - b) for a, b in zip(res["fp32"]["scores"], res["amp"]["scores"]))
    print(f"{steps} training steps ...", file=sys.stderr)
    res["train"] = train_steps(det, steps, batch=2 if dry else 8, device=device)
    res["total_s"] = time.perf_counter() - t0
    text = section(res)
    print(text)
    print(
        json.dumps(
            {k: v for k, v in res.items() if k not in ("fp32", "amp")}
            | {"fp32_images_per_s": res["fp32"]["images_per_s"], "amp_images_per_s": res["amp"]["images_per_s"]}
        )
    )
    doc = args.doc if args.doc is not None else (None if dry else _report.DOC)
    if doc is not None:
        _report.write_section(HEADING, text, doc)
    return 0 if res["parity"]["ok"] and res["train"]["losses_finite"] else 1


if __name__ == "__main__":
    sys.exit(main())
