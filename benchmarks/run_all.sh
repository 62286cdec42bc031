#!/usr/bin/env bash
# Regenerates the side-by-side inference sections of docs/benchmarks.md, each written by its
# script from one run on this machine (run it on a quiet machine; it takes about 100 minutes on
# 2 cores with the official code, about 50 without; SPAI_BENCH_IMAGES=100 about halves it):
#   1. bench_profile.py - one crop's time by operator group, torch.compile / ONNX Runtime tried,
#                         against the float32 GEMM floor measured in the same process;
#   2. bench_spai.py    - one 512x512 and one 1024x768 image, this project then the official code;
#   3. bench_many.py    - 200 images of 512x512: images/s, batched (torch and ONNX Runtime
#                         backends), against the official code at its best --batch-size.
# The official code runs through the reference harness: SPAI_REFHARNESS, default the shared
# folder next to the repository (../shared/refharness; its environment is built on first use,
# about 3 minutes); without it the scripts say so and report the floor ratio only.
#   bash benchmarks/run_all.sh                 # everything, as documented
#   SPAI_BENCH_IMAGES=10 SPAI_BENCH_PROBE=4 bash benchmarks/run_all.sh   # a smoke run
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-.venv/bin/python}
doc=docs/benchmarks.md
images=${SPAI_BENCH_IMAGES:-200}
probe=${SPAI_BENCH_PROBE:-24}
export SPAI_REFHARNESS=${SPAI_REFHARNESS:-$(cd .. && pwd)/shared/refharness}
start=$(date +%s)
$py benchmarks/bench_profile.py --write $doc
$py benchmarks/bench_spai.py --write $doc
$py benchmarks/bench_many.py --images "$images" --probe "$probe" --write $doc
echo "benchmarks/run_all.sh: done in $(( $(date +%s) - start )) s; sections written to $doc"
