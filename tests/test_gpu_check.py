"""benchmarks/gpu_check.sh: says so and exits 2 without CUDA; its CPU dry run runs every step
(parity, throughput with and without autocast, torch.amp training) and writes its section."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "benchmarks" / "gpu_check.sh"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, PYTHON=sys.executable),
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_gpu_check_without_cuda_says_so() -> None:
    out = _run()
    assert out.returncode == 2
    assert "no CUDA device" in out.stderr and "--cpu-dry-run" in out.stderr
    assert out.stdout == ""


def test_gpu_check_cpu_dry_run_writes_its_section(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n## Other\n\nkept\n\n## GPU check\n\nGPU figures are not measured.\n")
    out = _run(
        "--cpu-dry-run", "--images", "2", "--size", "224", "--batch", "2", "--train-steps", "1", "--doc", str(doc)
    )
    assert out.returncode == 0, out.stderr
    text = doc.read_text()
    assert "## Other\n\nkept" in text and "not measured" not in text
    assert "**CPU dry run**" in text and "not GPU figures" in text
    assert "| fixture parity (8 images, tolerance 1e-05) | ok, largest difference" in text
    assert "| throughput, autocast bfloat16 |" in text and "images/s" in text
    assert "| autocast score drift" in text
    assert "losses finite: True" in text
