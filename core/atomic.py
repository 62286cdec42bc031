"""Files that appear whole or not at all: write to a temporary name beside the target, flush
and fsync, then rename over it (``os.replace`` is atomic within a file system).

A crash or a full disk leaves at most a hidden ``.<name>.<random>.tmp`` file, which no reader
of this project mistakes for an image or a CSV; the target keeps its previous content.

Example::

    from core.atomic import atomic_path, write_bytes

    write_bytes(out / "x.jpg", data)
    with atomic_path(out / "table.parquet") as tmp:
        frame.to_parquet(tmp)
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

__all__ = ["TMP_SUFFIX", "atomic_open", "atomic_path", "fsync_dir", "write_bytes", "write_text"]

TMP_SUFFIX = ".tmp"  # temporary names: ".<target name>.<random hex>.tmp", hidden, not an image


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}{TMP_SUFFIX}")


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path to write ``path`` through; renamed over it when the block succeeds,
    removed when it fails. The writer must close the file before the block ends."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(path)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:  # the writer closed it: flush its data to the disk
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


@contextmanager
def atomic_open(path: str | Path, mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """``open(path, mode)`` through a temporary file (``w`` or ``wb`` modes only)."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes whole files: mode 'w' or 'wb', got {mode!r}")
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as fh:
        yield fh
        fh.flush()


def write_bytes(path: str | Path, data: bytes) -> Path:
    """``Path.write_bytes`` that never leaves a partial file under ``path``."""
    with atomic_open(path, "wb") as fh:
        fh.write(data)
    return Path(path)


def write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """``Path.write_text`` that never leaves a partial file under ``path``."""
    with atomic_open(path, "w", encoding=encoding, newline="") as fh:
        fh.write(text)
    return Path(path)
