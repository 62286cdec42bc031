"""A CSV written row by row that survives a crash and resumes where it stopped.

Rows go to ``<target>.partial`` (each flushed to the OS as soon as it is written) and the run's
arguments to ``<target>.partial.json``. ``finish()`` fsyncs and renames the partial file to the
target, so ``<target>`` only ever holds a complete table. Started again with the same
arguments, the writer keeps the complete rows already in the partial file (a torn last line
is dropped) and the caller computes only the rest; with other arguments it starts afresh.

Example::

    out = PartialCsv(Path("out/x.csv"), ["image", "spai"], {"model": sha})
    kept = out.start([r["image"] for r in rows], key="image")
    for row in rows[len(kept):]:
        out.append({"image": row["image"], "spai": score(row)})
    out.finish()
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any, TextIO

from core.atomic import fsync_dir, write_text

__all__ = ["PARTIAL_SUFFIX", "PartialCsv"]

PARTIAL_SUFFIX = ".partial"


class PartialCsv:
    """Append-as-you-go CSV with resume (see the module docstring)."""

    def __init__(self, target: Path, columns: list[str], arguments: dict[str, Any]) -> None:
        self.target = Path(target)
        self.partial = self.target.with_name(self.target.name + PARTIAL_SUFFIX)
        self.meta = self.partial.with_name(self.partial.name + ".json")
        self.columns = list(columns)
        self.arguments = {"columns": self.columns, **arguments}
        self._fh: TextIO | None = None
        self._writer: csv.DictWriter | None = None

    def start(self, keys: list[str], *, key: str) -> list[dict[str, str]]:
        """Open for writing; return the rows kept from an interrupted run with the same
        arguments whose ``key`` column equals ``keys[:len(kept)]`` (else nothing is kept)."""
        kept = self._resumable(keys, key)
        self.target.parent.mkdir(parents=True, exist_ok=True)
        if kept:
            self._fh = open(self.partial, "a", newline="", encoding="utf-8")
        else:
            write_text(self.meta, json.dumps(self.arguments, sort_keys=True, default=str))
            self._fh = open(self.partial, "w", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._fh, fieldnames=self.columns, extrasaction="ignore")
        if not kept:
            self._writer.writeheader()
            self._fh.flush()
        return kept

    def append(self, row: dict[str, Any]) -> None:
        """Write one row and hand it to the OS (it survives the process being killed)."""
        assert self._writer is not None and self._fh is not None, "call start() first"
        self._writer.writerow(row)
        self._fh.flush()

    def finish(self) -> Path:
        """Make the table durable and publish it under the target name."""
        assert self._fh is not None, "call start() first"
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.close()
        os.replace(self.partial, self.target)
        self.meta.unlink(missing_ok=True)
        fsync_dir(self.target.parent)
        return self.target

    def close(self) -> None:
        """Close without publishing (the partial file stays, to be resumed)."""
        if self._fh is not None:
            self._fh.close()
        self._fh = self._writer = None

    def _resumable(self, keys: list[str], key: str) -> list[dict[str, str]]:
        """Complete rows of a partial file written with the same arguments, in ``keys`` order;
        the file is cut after them (a torn last line or unexpected rows are dropped)."""
        if not (self.partial.is_file() and self.meta.is_file()):
            return []
        try:
            if json.loads(self.meta.read_text(encoding="utf-8")) != json.loads(
                json.dumps(self.arguments, sort_keys=True, default=str)
            ):
                return []
            data = self.partial.read_bytes()
        except (OSError, ValueError):
            return []
        complete = data[: data.rfind(b"\n") + 1]  # a line without its newline was torn
        try:
            reader = csv.DictReader(io.StringIO(complete.decode("utf-8"), newline=""))
            if reader.fieldnames != self.columns:
                return []
            kept = []
            for row, want in zip(reader, keys):
                if row.get(key) != want or None in row or None in row.values():
                    break
                kept.append(row)
        except (UnicodeDecodeError, csv.Error):
            return []
        if not kept:
            return []
        # Cut the file after the kept rows: re-write them (header + rows) exactly as read.
        buf = io.StringIO(newline="")
        writer = csv.DictWriter(buf, fieldnames=self.columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(kept)
        write_text(self.partial, buf.getvalue())
        return kept
