"""`examples/demo-study.yaml` end to end as on a fresh clone: no demo set, no store. Times
`python -m robustness.study run ... --formats all` (demo build, registration, derivation,
scoring, tables, figures, HTML report) and writes docs/benchmarks.md's "Demo study end to end"
section (only that section is replaced). Issue 17.1 asks for under 20 minutes on 2 cores.

The study file is copied into a scratch folder with its demo set redirected there (so the
repository's data/demo is neither used nor replaced) and its model paths made absolute.

Usage: python benchmarks/bench_demo_study.py [--scratch /tmp/bench_demo_study] [--no-write]
"""

from __future__ import annotations

import _report  # benchmarks/_report.py (the scripts run from this folder)

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
STUDY = REPO / "examples" / "demo-study.yaml"
HEADING = "## Demo study end to end"


def scratch_study(scratch: Path) -> Path:
    """The demo study with its image set under `scratch` and absolute model paths."""
    doc = yaml.safe_load(STUDY.read_text())
    for s in doc["image_sets"]:
        s["csv"] = str(scratch / "data" / "demo" / Path(s["csv"]).name)
    for m in doc["models"]:
        for key in ("weights", "config"):
            if key in m:
                m[key] = str((STUDY.parent / m[key]).resolve())
    path = scratch / "examples" / STUDY.name
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scratch", type=Path, default=Path("/tmp/bench_demo_study"))
    ap.add_argument("--no-write", action="store_true", help="print, do not edit the doc")
    args = ap.parse_args()
    if args.scratch.exists():
        shutil.rmtree(args.scratch)
    study = scratch_study(args.scratch)
    url = f"sqlite:///{args.scratch / 'spai.db'}"
    env = os.environ | {"SPAI_DATA_DIR": str(args.scratch / "store-data")}
    cmd = [
        sys.executable,
        "-m",
        "robustness.study",
        "run",
        str(study),
        "--database-url",
        url,
        "--output",
        str(args.scratch / "out"),
        "--formats",
        "all",
        "--worker",
        "inline",
        "--no-progress",
    ]
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    load1 = os.getloadavg()[0]
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        sys.exit(f"study run failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    manifest = json.loads((args.scratch / "data" / "demo" / "manifest.json").read_text())
    test = manifest["counts"]["test"]
    build_s = manifest.get("timing_s", {}).get("total")
    text = f"""{HEADING}

`python benchmarks/bench_demo_study.py`: `python -m robustness.study run examples/demo-study.yaml
--formats all` as on a fresh clone (no demo set, a new SQLite store; inline worker), on
{platform.machine()} with {os.cpu_count()} logical CPUs, 1-minute load average {load0:.1f} at the start
and {load1:.1f} at the end (other jobs on the machine count).

| step | time |
|---|---|
| whole run (build, register, derive 5 conditions, score 6 conditions, tables, figures, HTML) | {wall / 60:.1f} min wall, {(cpu.ru_utime + cpu.ru_stime) / 60:.1f} min CPU |
| of which the demo set's build (its manifest) | {"n/a" if build_s is None else f"{build_s / 60:.1f} min"} |

{len(manifest["sources"])} photos; test split {test["real"]} real + {test["fake"]} fake images.
Issue 17.1 asks for under 20 minutes on 2 cores: {"met" if wall < 20 * 60 else "not met"} in this run.
"""
    print(text)
    if not args.no_write:
        _report.write_section(HEADING, text)


if __name__ == "__main__":
    main()
