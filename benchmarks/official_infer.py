"""Time the OFFICIAL SPAI ``infer`` on a folder of images at a chosen ``--batch-size``.

Runs only in the official-code environment of the reference harness (the folder that
``SPAI_REFHARNESS`` names, outside this repository; see its README) and only through it: the harness's ``make_reference`` module takes the official
code from a git mirror of the official repository into a temporary folder at run time and
installs its CPU shims; this script then calls the official ``infer`` command in-process with
the batch size asked for (the harness's own command line always uses 1). Nothing of the
official code is stored in this repository.

    $V/bin/python benchmarks/official_infer.py --harness "$SPAI_REFHARNESS" \\
        --ckpt /tmp/vitb.pth --image-dir /tmp/imgs --batch-size 4 --out-csv /tmp/official.csv

Prints one JSON line: images, batch size, seconds of the ``infer`` call, the official commit.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--harness", type=Path, required=True, help="folder of make_reference.py")
    ap.add_argument("--config", default="full", help="'full', 'tiny' or a YAML path (as the harness)")
    ap.add_argument("--ckpt", type=Path, required=True)
    ap.add_argument("--image-dir", type=Path, required=True)
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--workers", type=int, default=1, help="DATA.NUM_WORKERS (data-loader processes)")
    ap.add_argument("--out-csv", type=Path, default=None, help="image,score of the official run")
    args = ap.parse_args()

    sys.path.insert(0, str(args.harness.resolve()))
    ref = importlib.import_module("make_reference")
    work = Path(tempfile.mkdtemp(prefix="spai_official_bench_"))
    try:
        official = ref.extract_official(ref.DEFAULT_MIRROR, work / "official")
        sys.path.insert(0, str(official))
        os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
        ref.install_shims()
        cfg_path = ref.resolve_config(args.config, official, work)
        images = ref.collect_images(argparse.Namespace(images=None, image_dir=str(args.image_dir)))
        in_csv = work / "input.csv"
        ref.write_input_csv(images, in_csv)
        official_cli = importlib.import_module("spai.__main__")
        t0 = time.perf_counter()
        official_cli.cli.main(
            args=[
                "infer",
                "--cfg",
                str(cfg_path),
                "--batch-size",
                str(args.batch_size),
                "--input",
                str(in_csv),
                "--model",
                str(args.ckpt.resolve()),
                "--output",
                str(work / "out"),
                "--tag",
                "spai",
                "--opt",
                "DATA.NUM_WORKERS",
                str(args.workers),
            ],
            standalone_mode=False,
        )
        seconds = time.perf_counter() - t0
        with open(work / "out" / in_csv.name, newline="") as fh:
            rows = list(csv.DictReader(fh))
        if args.out_csv is not None:
            args.out_csv.parent.mkdir(parents=True, exist_ok=True)
            with open(args.out_csv, "w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(["image", "score"])
                for r in rows:
                    w.writerow([Path(r["image"]).name, r["spai"]])
        import torch

        print(
            json.dumps(
                {
                    "images": len(rows),
                    "batch_size": args.batch_size,
                    "workers": args.workers,
                    "infer_s": seconds,
                    "threads": torch.get_num_threads(),
                    "commit": (official / "OFFICIAL_COMMIT").read_text().strip(),
                }
            )
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
