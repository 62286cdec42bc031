"""The dashboard's own worker: it exits with the server that started it (real processes) or
after an idle timeout; the sidebar shows whether a worker is alive and what it runs, and a dead
worker is replaced."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from app_support import new_app, texts, use_store
from dashboard import jobqueue
from jobs.worker import JobWorker, WorkerConfig, pid_alive
from db import jobs
from db.models import Worker as WorkerRow
from db.owners import LOCAL
from db.session import REPO_ROOT, dispose_all, session_scope
from worker_support import wait_for

HANG_GUARD_S = 180  # bounds on waits for real processes (a hang guard, not a timing check)


def _until(what: str, check: Callable[[], object]) -> object:
    deadline = time.monotonic() + HANG_GUARD_S
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.3)
    raise AssertionError(f"never happened: {what}")


def _worker_rows(url: str) -> list[WorkerRow]:
    with session_scope(url, readonly=True) as s:
        return list(s.scalars(select(WorkerRow)))


def test_worker_exits_with_the_server_that_started_it(sqlite_url: str, tmp_path: Path) -> None:
    """A stand-in server starts the worker as the dashboard does, then dies (SIGKILL: no
    clean-up of its own); the worker notices and exits cleanly."""
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, sys, time\n"
            "from jobs.worker import ensure_worker_running\n"
            f"p = ensure_worker_running({sqlite_url!r}, parent_pid=os.getpid(), "
            f"log_path={str(tmp_path / 'worker.log')!r})\n"
            "print(p.pid, flush=True)\n"
            "time.sleep(600)\n",
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, SPAI_DATA_DIR=str(tmp_path / "data")),
    )
    worker_pid = int(server.stdout.readline())
    try:
        _until("the worker registers", lambda: _worker_rows(sqlite_url))
        (row,) = _worker_rows(sqlite_url)
        assert row.pid == worker_pid and row.stopped_at is None
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=HANG_GUARD_S)
        _until("the worker stops", lambda: _worker_rows(sqlite_url)[0].stopped_at)
        _until("the worker process ends", lambda: not pid_alive(worker_pid))
    finally:
        if server.poll() is None:
            server.kill()
        if pid_alive(worker_pid):
            os.kill(worker_pid, signal.SIGKILL)
    assert "process" in (tmp_path / "worker.log").read_text()  # "... is gone: stopping"
    dispose_all()


def test_worker_exits_after_idle_timeout(sqlite_url: str) -> None:
    worker = JobWorker(WorkerConfig(idle_exit=0.0, poll_seconds=0.05), url=sqlite_url)
    assert worker.serve() == 0
    (row,) = _worker_rows(sqlite_url)
    assert row.stopped_at is not None
    dispose_all()


def test_sidebar_shows_the_live_worker_and_its_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_store(monkeypatch, tmp_path / "spai.db")
    url = f"sqlite:///{tmp_path / 'spai.db'}"
    at = new_app().run()
    assert any("No worker running (SPAI_START_WORKER=0)" in c for c in texts(at.sidebar, "caption"))
    with session_scope(url) as s:
        job = jobs.enqueue(s, "import", {"source": "study"})
        jobs.claim(s, "w1", ["import"])
        jobs.register_worker(s, "w1", socket.gethostname(), os.getpid())  # this process: alive
        jobs.worker_heartbeat(s, "w1", job)
        jobs.register_worker(s, "w2", socket.gethostname(), 2**22 + 7)  # no such process
    at = new_app().run()
    assert not at.exception
    assert "Worker alive, running job #1: Import the robustness study." in texts(at.sidebar, "caption")[-1]
    dispose_all()


def test_a_dead_worker_is_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The app starts its worker; killed, it is replaced on the next run and the new one
    runs the waiting job."""
    import streamlit as st

    from dashboard import resources

    use_store(monkeypatch, tmp_path / "spai.db")
    monkeypatch.setenv("SPAI_START_WORKER", "1")
    url = f"sqlite:///{tmp_path / 'spai.db'}"
    st.cache_resource.clear()  # a fresh worker slot for this "server"
    procs = []
    try:
        at = new_app().run()
        side = " ".join(texts(at.sidebar, "caption"))
        assert "Worker starting" in side or "Worker alive" in side, side  # not "No worker"
        first = resources._worker_slot().proc
        procs.append(first)
        assert first is not None and first.poll() is None
        _until("the worker registers", lambda: _worker_rows(url))
        first.send_signal(signal.SIGKILL)  # a crash: no clean-up
        first.wait(timeout=HANG_GUARD_S)
        folder = tmp_path / "imgs"
        folder.mkdir()
        Image.new("RGB", (32, 32)).save(folder / "a.png")
        with session_scope(url) as s:
            job = jobqueue.enqueue_register_folder(s, str(folder), name="x", kind="real", actor=LOCAL)
        at = new_app().run()
        assert not at.exception
        second = resources._worker_slot().proc
        procs.append(second)
        assert second is not None and second.pid != first.pid
        assert wait_for(url, job, lambda v: v.status == "done", HANG_GUARD_S).result["added"] == 1
    finally:
        for proc in procs:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=HANG_GUARD_S)
        st.cache_resource.clear()
        dispose_all()
