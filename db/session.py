"""The only place that creates engines and sessions.

``DATABASE_URL`` (any SQLAlchemy URL) overrides the default ``sqlite:///data/spai.db`` (relative
to the repository root). SQLite connections get WAL, ``busy_timeout`` and foreign keys from a
connect hook, and write transactions start with ``BEGIN IMMEDIATE`` so that concurrent writers
wait for the lock instead of failing with "database is locked".

Usage::

    from db.session import session_scope
    with session_scope() as s:
        ...  # pass `s` down; the scope commits on success and rolls back on error
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, InterfaceError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "sqlite:///data/spai.db"  # relative to REPO_ROOT
SQLITE_BUSY_TIMEOUT_MS = 60_000  # writers wait this long for the lock before erroring
BUSY_TIMEOUT_ENV = "SPAI_SQLITE_BUSY_MS"  # overrides SQLITE_BUSY_TIMEOUT_MS (e.g. a snappy page)


def sqlite_busy_timeout_ms() -> int:
    """How long a SQLite writer waits for the lock: ``SPAI_SQLITE_BUSY_MS`` or the default."""
    raw = os.environ.get(BUSY_TIMEOUT_ENV, "").strip()
    if not raw:
        return SQLITE_BUSY_TIMEOUT_MS
    if not raw.isdigit():
        raise ValueError(f"{BUSY_TIMEOUT_ENV} must be a number of milliseconds, not {raw!r}")
    return int(raw)


def store_busy(exc: BaseException) -> bool:
    """Whether ``exc`` means another process holds the store's write lock (retry later)."""
    text = str(getattr(exc, "orig", exc)).lower()
    return isinstance(exc, OperationalError) and ("database is locked" in text or "database table is locked" in text)


_lock = threading.Lock()
_engines: dict[str, Engine] = {}
_migrated: set[str] = set()


class StoreUnavailable(OSError):
    """The database URL is malformed, its folder or driver missing, or the server unreachable."""


def database_url(url: str | None = None) -> str:
    """Resolve the URL: explicit argument, then ``DATABASE_URL``, then the default file."""
    raw = url or os.environ.get("DATABASE_URL") or DEFAULT_URL
    try:
        parsed = make_url(raw)
    except ArgumentError:
        raise StoreUnavailable(
            f"not a database URL: {raw!r} (expected e.g. sqlite:///data/spai.db or postgresql+psycopg://user@host/db)"
        ) from None
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = Path(parsed.database)
        if not path.is_absolute():  # relative to the repository: its data folder is ours
            path = REPO_ROOT / path
            path.parent.mkdir(parents=True, exist_ok=True)
        elif not path.parent.is_dir():  # never create folders elsewhere (e.g. at the root)
            raise StoreUnavailable(
                f"the folder of the SQLite database {path} does not exist; create it or fix the database URL"
            )
        raw = parsed.set(database=str(path)).render_as_string(hide_password=False)
    return raw


def check_store(url: str | None = None) -> Engine:
    """``init_db`` that turns a bad URL, a missing driver or an unreachable server into
    ``StoreUnavailable`` with a one-line reason (for command lines)."""
    try:
        return init_db(url)
    except (ArgumentError, NoSuchModuleError, OperationalError, InterfaceError) as exc:
        shown = make_url(database_url(url)).render_as_string(hide_password=True)
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise StoreUnavailable(f"cannot open the database {shown}: {reason}") from None


def _sqlite_on_connect(dbapi_conn, _record) -> None:
    dbapi_conn.isolation_level = None  # let the begin hook below emit BEGIN itself
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout={sqlite_busy_timeout_ms()}")  # first: the pragmas below may wait
    _ensure_wal(cur)
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _ensure_wal(cur) -> None:
    """Switch the file to WAL unless it already is; retry while other processes open it.

    Several processes opening one store at once (a worker pool, a page and its worker) can meet a
    file whose WAL index is being rebuilt; SQLite may then answer "database is locked" without
    calling the busy handler, so the switch is retried up to the busy timeout.
    """
    deadline = time.monotonic() + sqlite_busy_timeout_ms() / 1000
    while True:
        try:
            if str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc).lower() or time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def _sqlite_on_begin(conn) -> None:
    mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
    conn.exec_driver_sql(f"BEGIN {mode}")


def get_engine(url: str | None = None) -> Engine:
    """Return the process-wide engine for ``url`` (created once, then cached)."""
    resolved = database_url(url)
    with _lock:
        engine = _engines.get(resolved)
        if engine is None:
            if make_url(resolved).get_backend_name() == "sqlite":
                engine = create_engine(resolved, connect_args={"timeout": sqlite_busy_timeout_ms() / 1000})
                event.listen(engine, "connect", _sqlite_on_connect)
                event.listen(engine, "begin", _sqlite_on_begin)
            else:
                engine = create_engine(resolved, pool_pre_ping=True)
            _engines[resolved] = engine
    return engine


def init_db(url: str | None = None) -> Engine:
    """Create or upgrade the schema to the newest migration (once per process and URL)."""
    engine = get_engine(url)
    key = str(engine.url)
    if key not in _migrated:
        from db.migrate import upgrade

        upgrade(engine)
        _migrated.add(key)
    return engine


@contextmanager
def session_scope(url: str | None = None, *, readonly: bool = False) -> Iterator[Session]:
    """A unit of work: commit on success, roll back on error, always close.

    ``readonly=True`` starts a deferred transaction on SQLite so long reads do not hold the
    write lock; writing inside such a scope may then fail under contention.
    """
    engine = init_db(url)
    bind = engine.execution_options(sqlite_begin="DEFERRED") if readonly else engine
    session = sessionmaker(bind=bind, expire_on_commit=False)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def dispose_all() -> None:
    """Close every pooled connection (tests and forked children call this)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
        _migrated.clear()
