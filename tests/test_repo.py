"""Repository contracts: CI runs exactly the README's test command."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command() -> None:
    blocks = re.findall(r"```bash\n(.*?)\n```", (ROOT / "README.md").read_text(), re.S)
    test_cmd = next(b for b in blocks if "pytest" in b)
    ci_lines = [ln for ln in (ROOT / ".ci" / "run").read_text().splitlines() if "pytest" in ln]
    assert ci_lines == [test_cmd]


def test_nothing_reads_shared_at_run_or_test_time() -> None:
    offenders = []
    for path in ROOT.rglob("*.py"):
        if ".venv" in path.parts or path == Path(__file__).resolve():
            continue
        text = path.read_text(errors="ignore")
        if "../shared" in text or "/work/shared" in text:
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
