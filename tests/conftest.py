"""Shared fixtures: a SQLite-file database and a throwaway real PostgreSQL server.

The PostgreSQL fixture runs ``initdb``/``pg_ctl`` from ``/usr/lib/postgresql/<v>/bin`` (as the
``postgres`` user when running as root). Without the binaries the PostgreSQL tests are skipped
locally, but fail when the ``CI`` environment variable is set, so CI cannot skip them silently.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from tiny_model import TINY_PHOTO

# The app serves only loopback without sign-in (dashboard/access.py); AppTest pages run as the
# local server .streamlit/config.toml describes, whatever folder pytest was started from.
os.environ.setdefault("STREAMLIT_SERVER_ADDRESS", "127.0.0.1")

PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"
_db_counter = itertools.count()


def _pg_bin() -> Path | None:
    for candidate in sorted(glob.glob(PG_BIN_GLOB), reverse=True):
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(cmd: list[str]) -> list[str]:
    """Run as the postgres user when we are root (initdb refuses to run as root)."""
    if os.geteuid() != 0:
        return cmd
    return ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(f"'{c}'" for c in cmd)]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A PostgreSQL server on 127.0.0.1 for this test session; yields its base URL."""
    bindir = _pg_bin()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL binaries not found but CI is set: install postgresql")
        pytest.skip("PostgreSQL binaries not installed (apt-get install -y postgresql)")
    tmp = Path(tempfile.mkdtemp(prefix="spai-pg-"))
    datadir, sockdir = tmp / "data", tmp / "sock"
    sockdir.mkdir()
    if os.geteuid() == 0:
        shutil.chown(tmp, "postgres")
        shutil.chown(sockdir, "postgres")
    port = _free_port()
    subprocess.run(
        _as_postgres([str(bindir / "initdb"), "-A", "trust", "-U", "postgres", "-D", str(datadir)]),
        check=True,
        capture_output=True,
    )
    opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {sockdir} -c fsync=off"
    subprocess.run(
        _as_postgres(
            [str(bindir / "pg_ctl"), "-D", str(datadir), "-o", opts, "-l", str(tmp / "pg.log"), "-w", "start"]
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(
            _as_postgres([str(bindir / "pg_ctl"), "-D", str(datadir), "-m", "fast", "stop"]), capture_output=True
        )
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server: str) -> str:
    """A fresh, empty database on the session's PostgreSQL server."""
    import psycopg

    name = f"t{os.getpid()}_{next(_db_counter)}"
    with psycopg.connect(pg_server.replace("postgresql+psycopg", "postgresql") + "/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"{pg_server}/{name}"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite database file."""
    return f"sqlite:///{tmp_path / 'spai.db'}"


@pytest.fixture
def page_store(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    """Environment for a page under AppTest: a fresh SQLite store, a data folder, no worker
    started by the page. Yields (url, tmp_path)."""
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("SPAI_START_WORKER", "0")
    monkeypatch.setenv("SPAI_DATA_DIR", str(tmp_path / "data"))
    yield sqlite_url, tmp_path
    from db.session import dispose_all

    dispose_all()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """A fresh database of each back-end; also exported as DATABASE_URL for subprocesses."""
    url = request.getfixturevalue("sqlite_url") if request.param == "sqlite" else request.getfixturevalue("pg_url")
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("SPAI_DATA_DIR", str(tmp_path / "data"))
    yield url
    from db.session import dispose_all

    dispose_all()


@pytest.fixture(scope="session")
def tiny_training_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 images for training tests: real = photo crops, fake = the same crops at 20% contrast
    (an easy cue); 3 pairs train, 1 pair val. Returns the official-format CSV."""
    import csv

    import numpy as np
    from PIL import Image

    root = tmp_path_factory.mktemp("tiny_data")
    photo_path = TINY_PHOTO
    photo = np.asarray(Image.open(photo_path).convert("RGB"))
    rows = []
    for i in range(4):
        crop = Image.fromarray(photo[40 * i : 40 * i + 240, 100 * i : 100 * i + 240])
        fake = Image.blend(crop, Image.new("RGB", crop.size, (128, 128, 128)), 0.8)
        split = "train" if i < 3 else "val"
        crop.save(root / f"real{i}.png")
        fake.save(root / f"fake{i}.png")
        rows += [(f"real{i}.png", 0, split), (f"fake{i}.png", 1, split)]
    with (root / "data.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["image", "class", "split"])
        writer.writerows(rows)
    return root / "data.csv"
