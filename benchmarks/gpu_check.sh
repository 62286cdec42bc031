#!/usr/bin/env bash
# GPU check (issue 16.6): run from the repository root on a machine with a CUDA GPU, with the
# project's venv; writes the "GPU check" section of docs/benchmarks.md (under 5 minutes):
#     bash benchmarks/gpu_check.sh
# Without a GPU it exits 2 and says so; `--cpu-dry-run` runs every step small on the CPU.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
cd "$ROOT/benchmarks"
exec "$PYTHON" gpu_check.py "$@"
