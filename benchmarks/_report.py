"""Shared by the benchmark scripts: write one section of docs/benchmarks.md in place."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def write_section(heading: str, text: str, doc: Path = DOC) -> None:
    """Replace the section that starts with `heading` (up to the next '## '), or append it."""
    doc.parent.mkdir(parents=True, exist_ok=True)
    body = doc.read_text(encoding="utf-8") if doc.exists() else "# Benchmarks\n"
    text = text.rstrip("\n") + "\n"
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(body):
        body = pattern.sub(lambda _m: text + "\n", body, count=1)
    else:
        body = body.rstrip("\n") + "\n\n" + text
    doc.write_text(body.rstrip("\n") + "\n", encoding="utf-8")
