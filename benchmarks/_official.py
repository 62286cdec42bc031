"""The official SPAI code, side by side: found through the reference harness, or absent.

The harness (the folder ``SPAI_REFHARNESS`` names; ``benchmarks/run_all.sh`` sets it to the
project's shared reference folder, outside this repository) runs the official code from a
git mirror of the official repository (``SPAI_MIRROR``, else a ``.mirror/mever-team+spai/repo``
above the harness) in its own environment (``refenv.sh`` builds it once, about 3 minutes).
When any of the three is missing, ``locate`` says why and the benchmarks report this project's
figures and the floor ratio only. Nothing of the official code is stored in this repository.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
SEED = 1234  # the seeded ViT-B/16 checkpoint both sides load


@dataclass(frozen=True)
class Measured:
    """One child process: wall time, its own peak RSS, what it printed."""

    wall_s: float
    peak_rss_bytes: int
    stdout: str
    stderr: str
    returncode: int

    def check(self, what: str) -> Measured:
        if self.returncode != 0:
            raise RuntimeError(f"{what} failed (exit {self.returncode}):\n{self.stderr[-3000:]}")
        return self


def run_measured(cmd: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT) -> Measured:
    """Run ``cmd`` to the end; wall time and the child's own ru_maxrss (os.wait4)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Measured(wall, usage.ru_maxrss * 1024, out.read(), err.read(), proc.returncode)


@dataclass(frozen=True)
class Official:
    harness: Path
    python: Path  # the official-code environment's interpreter
    mirror: Path

    def make_reference(self, *args: str) -> list[str]:
        return [str(self.python), str(self.harness / "make_reference.py"), "--mirror", str(self.mirror), *args]


def _mirror(harness: Path) -> Path | None:
    if os.environ.get("SPAI_MIRROR"):
        return Path(os.environ["SPAI_MIRROR"])
    for up in harness.resolve().parents:
        if (up / ".mirror" / "mever-team+spai" / "repo").is_dir():
            return up / ".mirror" / "mever-team+spai" / "repo"
    return None


def locate() -> Official | str:
    """The official code through the harness, or why it cannot run here (one sentence)."""
    if not os.environ.get("SPAI_REFHARNESS"):
        return "SPAI_REFHARNESS does not name the reference harness's folder"
    harness = Path(os.environ["SPAI_REFHARNESS"])
    if not (harness / "make_reference.py").is_file():
        return f"the reference harness was not found at {harness} (SPAI_REFHARNESS)"
    mirror = _mirror(harness)
    if mirror is None or not mirror.exists():
        return "no mirror of the official repository (set SPAI_MIRROR, or fetch github:mever-team/spai)"
    env = subprocess.run(["bash", str(harness / "refenv.sh")], capture_output=True, text=True)
    venv = env.stdout.strip().splitlines()[-1] if env.stdout.strip() else ""
    if env.returncode != 0 or not (Path(venv) / "bin" / "python").is_file():
        return f"the official-code environment could not be built ({env.stdout.strip()[-300:]})"
    return Official(harness, Path(venv) / "bin" / "python", mirror)


def make_checkpoint(path: Path, official: Official | str) -> str:
    """The seeded ViT-B/16 checkpoint at ``path``: built by the official code's own init when
    the harness runs, else by this project's; returns how it was made."""
    how = path.with_suffix(".how.txt")
    if path.is_file() and how.is_file():
        return how.read_text().strip()
    if isinstance(official, Official):
        official_run = run_measured(
            official.make_reference(
                "--config", "full", "--seed", str(SEED), "--init", "official", "--save-ckpt", str(path)
            )
        )
        official_run.check("building the seeded checkpoint with the official code")
        made = f"the official code's init, seed {SEED}"
    else:
        import torch

        from spai.config import load_config
        from spai.model import build_model

        torch.manual_seed(SEED)
        model = build_model(load_config(ROOT / "configs" / "spai.yaml"))
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"model": model.state_dict()}, path)
        made = f"this project's init, seed {SEED}"
    how.write_text(made)
    return made


def official_one_image(official: Official, ckpt: Path, image: Path, out_csv: Path) -> dict:
    """The harness's own command on one image: whole process, its infer seconds, peak RSS."""
    m = run_measured(
        official.make_reference(
            "--config", "full", "--ckpt", str(ckpt), "--images", str(image), "--out-csv", str(out_csv)
        )
    )
    m.check("the official code (make_reference.py)")
    found = re.search(r"official infer on \d+ image\(s\): ([0-9.]+)s", m.stderr)
    return {
        "process_s": m.wall_s,
        "infer_s": float(found.group(1)) if found else None,
        "peak_rss_gb": m.peak_rss_bytes / 1e9,
        "score": _scores(out_csv)[image.name],
    }


def official_many(official: Official, ckpt: Path, image_dir: Path, batch_size: int, out_csv: Path) -> dict:
    """The official ``infer`` on a folder at ``batch_size`` (benchmarks/official_infer.py)."""
    m = run_measured(
        [
            str(official.python),
            str(HERE / "official_infer.py"),
            "--harness",
            str(official.harness),
            "--ckpt",
            str(ckpt),
            "--image-dir",
            str(image_dir),
            "--batch-size",
            str(batch_size),
            "--out-csv",
            str(out_csv),
        ],
        env={**os.environ, "SPAI_MIRROR": str(official.mirror)},
    )
    m.check(f"the official code at --batch-size {batch_size}")
    info = json.loads(m.stdout.strip().splitlines()[-1])
    return {**info, "process_s": m.wall_s, "peak_rss_gb": m.peak_rss_bytes / 1e9, "scores": _scores(out_csv)}


def _scores(csv_path: Path) -> dict[str, float]:
    import csv

    with open(csv_path, newline="") as fh:
        return {Path(r["image"]).name: float(r["score"]) for r in csv.DictReader(fh)}
