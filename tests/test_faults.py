"""Fault injection with real worker processes on SQLite and PostgreSQL (issue 14's acceptance).

- a worker whose host clock runs 120 s ahead (skew injected into its Python process) takes
  over nothing that is alive: times come from the database server;
- a worker paused (SIGSTOP) past the stale limit, then resumed (SIGCONT), writes nothing once
  its job was taken over, and the job ends with exactly one prediction per image;
- a job whose worker dies every time it runs ends ``failed`` after the attempt limit;
- a write on a full disk leaves no partial file that reads as good (a 256 KiB tmpfs when this
  process may mount one, else a file-size limit, RLIMIT_FSIZE, in a subprocess).

Waits are bounded hang guards, never timing assertions.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from dashboard import jobqueue
from db import jobs
from db.models import Prediction, Run
from db.models import Worker as WorkerRow
from db.owners import LOCAL
from db.session import REPO_ROOT, session_scope
from tiny_model import TINY_IMAGES
from worker_support import image_set, wait_for

WAIT_LIMIT_S = 300  # hang guard on a shared machine
HEARTBEAT, STALE = "0.5", "2"  # seconds: stale limit = 4 heartbeats
PHOTO = "07_photo_640x427.jpg"
SKEW_S = 120.0
SKEWED_WORKER = textwrap.dedent("""
    # The host clock as this process sees it, 120 s ahead: Python's time.time() and the
    # project's one wall-clock helper (db.models.utcnow), patched before anything imports it.
    # (Replacing datetime.datetime itself crashes C extensions.)
    import datetime, os, runpy, sys, time
    skew = float(os.environ["CLOCK_SKEW_S"])
    real_time = time.time
    time.time = lambda: real_time() + skew
    import db.models
    real_utcnow = db.models.utcnow
    db.models.utcnow = lambda: real_utcnow() + datetime.timedelta(seconds=skew)
    sys.argv = ["jobs.worker", *sys.argv[1:]]
    runpy.run_module("jobs.worker", run_name="__main__")
""")


def _wait(url: str, job_id: int, pred: Callable[[jobs.JobView], bool]) -> jobs.JobView:
    return wait_for(url, job_id, pred, WAIT_LIMIT_S)


def _until(cond: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_LIMIT_S
    while not cond():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.1)


def _worker(*extra: str, skew: float | None = None, log: Path | None = None) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    args = ["--poll-seconds", "0.2", "--heartbeat-seconds", HEARTBEAT, "--stale-after", STALE, *extra]
    if skew is None:
        cmd = [sys.executable, "-m", "jobs.worker", *args]
    else:
        env["CLOCK_SKEW_S"] = str(skew)
        cmd = [sys.executable, "-c", SKEWED_WORKER, *args]
    out = open(log, "wb") if log is not None else subprocess.DEVNULL
    return subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGCONT)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _infer_job(url: str, folder: Path, copies: int) -> tuple[int, int]:
    set_id, model_id = image_set(url, folder, [PHOTO], copies=copies)
    with session_scope(url) as s:
        job_id = jobqueue.enqueue_infer(s, model_id=model_id, imageset_id=set_id, batch_size=2, device="cpu")
    return job_id, set_id


def _counts(url: str) -> dict[int, int]:
    with session_scope(url, readonly=True) as s:
        return dict(s.execute(select(Prediction.image_id, func.count()).group_by(Prediction.image_id)).all())


def _worker_beats(url: str, pid: int) -> list:
    with session_scope(url, readonly=True) as s:
        return list(s.scalars(select(WorkerRow.heartbeat_at).where(WorkerRow.pid == pid)))


def test_worker_with_a_clock_120_s_ahead_takes_over_nothing_alive(db_url: str, tmp_path: Path) -> None:
    job_id, _ = _infer_job(db_url, tmp_path / "skew", copies=60)
    owner = _worker()
    skewed = None
    try:
        view = _wait(db_url, job_id, lambda v: v.status == "running")
        owner_id = view.worker_id
        skewed = _worker("--kinds", "infer", skew=SKEW_S)
        # The skewed worker registered and kept polling the queue (two heartbeats of its own).
        _until(lambda: len(_worker_beats(db_url, skewed.pid)) == 1, "skewed worker registered")
        first = _worker_beats(db_url, skewed.pid)[0]
        _until(lambda: _worker_beats(db_url, skewed.pid)[0] != first, "skewed worker beats")
        with session_scope(db_url, readonly=True) as s:
            assert jobs.get_job(s, job_id).status == "running", (
                "the job finished before the skewed worker polled: use more images"
            )
        view = _wait(db_url, job_id, lambda v: v.status != "running")
    finally:
        _stop(owner)
        if skewed is not None:
            _stop(skewed)
    assert view.status == "done", view.traceback
    assert view.attempts == 1 and view.worker_id == owner_id, view.log_tail
    assert "resumed" not in view.log_tail
    assert set(_counts(db_url).values()) == {1} and len(_counts(db_url)) == 60


def test_paused_worker_stops_writing_once_its_job_was_taken_over(db_url: str, tmp_path: Path) -> None:
    job_id, _ = _infer_job(db_url, tmp_path / "pause", copies=24)
    log = tmp_path / "paused.log"
    paused = _worker(log=log)
    other = None
    try:
        _wait(db_url, job_id, lambda v: v.progress_done >= 4)
        paused.send_signal(signal.SIGSTOP)
        other = _worker()  # takes the job over once its heartbeat is STALE seconds old
        view = _wait(db_url, job_id, lambda v: v.status in ("done", "failed"))
        assert view.status == "done" and view.attempts == 2, view.traceback
        with session_scope(db_url, readonly=True) as s:
            rows_before = s.scalar(select(func.count()).select_from(Prediction))
            last_before = s.scalar(select(func.max(Prediction.id)))
        paused.send_signal(signal.SIGCONT)
        _until(lambda: "taken over" in log.read_text(errors="replace"), "the resumed worker noticed it lost the job")
        with session_scope(db_url, readonly=True) as s:
            assert s.scalar(select(func.count()).select_from(Prediction)) == rows_before
            assert s.scalar(select(func.max(Prediction.id))) == last_before
            assert jobs.get_job(s, job_id).status == "done"
            assert s.scalars(select(Run.status)).one() == "done"
    finally:
        _stop(paused)
        if other is not None:
            _stop(other)
    counts = _counts(db_url)
    assert len(counts) == 24 and set(counts.values()) == {1}


def test_job_that_kills_its_worker_fails_after_the_attempt_limit(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("SPAI_DATA_DIR", str(tmp_path / "data"))
    job_id, _ = _infer_job(sqlite_url, tmp_path / "poison", copies=40)
    for attempt in range(1, jobs.MAX_ATTEMPTS + 1):  # the worker dies on this job every time
        proc = _worker()
        try:
            _wait(
                sqlite_url,
                job_id,
                lambda v, a=attempt: v.status == "running" and v.attempts == a and v.progress_done >= 1,
            )
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    last = _worker()
    try:
        view = _wait(sqlite_url, job_id, lambda v: v.status != "running")
    finally:
        _stop(last)
    assert view.status == "failed" and view.attempts == jobs.MAX_ATTEMPTS
    assert f"gave up after {jobs.MAX_ATTEMPTS} attempts" in view.traceback
    assert "gave up" in view.log_tail


# --- a full disk ------------------------------------------------------------------------------

FULL_DISK_CHECK = textwrap.dedent("""
    import sys
    from pathlib import Path
    from robustness.apply import derive_file
    from core.atomic import write_text
    folder, source = Path(sys.argv[1]), sys.argv[2]
    (folder / "old.png").write_bytes(b"the previous good file")
    try:
        derive_file(source, "meme", folder / "old", "key")
    except OSError as exc:
        print("derive refused:", exc.errno)
    try:
        write_text(folder / "table.csv", "image,spai\\n" + "x.png,0.5\\n" * 100000)
    except OSError as exc:
        print("csv refused:", exc.errno)
""")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[tuple[Path, list[str]]]:
    """(folder, command prefix): a 256 KiB tmpfs when it can be mounted, else a plain folder
    written by a process whose file-size limit (RLIMIT_FSIZE) is 256 KiB."""
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)], capture_output=True
        ).returncode
        == 0
    )
    prefix = [sys.executable, "-c"]
    if not mounted:
        limit = textwrap.dedent("""
            import resource, signal
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
            resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, 256 * 1024))
        """)
        prefix = [sys.executable, "-c", limit + "exec(open(__import__('sys').argv.pop(1)).read())"]
    try:
        yield folder, prefix
    finally:
        if mounted:
            subprocess.run(["umount", str(folder)], check=True)


def test_full_disk_leaves_no_partial_file(small_disk, tmp_path: Path) -> None:
    folder, prefix = small_disk
    script = tmp_path / "check.py"
    script.write_text(FULL_DISK_CHECK)
    cmd = [*prefix, FULL_DISK_CHECK] if len(prefix) == 2 else [*prefix, str(script)]
    res = subprocess.run(
        cmd + [str(folder), str(TINY_IMAGES / "03_rgb_1024x768.png")],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=WAIT_LIMIT_S,
    )
    assert res.returncode == 0, res.stderr
    assert "derive refused" in res.stdout and "csv refused" in res.stdout, res.stdout
    assert sorted(p.name for p in folder.iterdir()) == ["old.png"]  # no .tmp, no partial
    assert (folder / "old.png").read_bytes() == b"the previous good file"


def test_registering_2000_files_while_two_workers_finish_jobs(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Registration commits in batches: the other workers' claims and writes never wait long
    enough for "database is locked", and no worker exits."""
    import numpy as np
    from PIL import Image

    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("SPAI_DATA_DIR", str(tmp_path / "data"))
    big = tmp_path / "big"
    big.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2000):
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(big / f"{i}.png")
    set_id, _ = image_set(sqlite_url, tmp_path / "small", [PHOTO])
    conditions = ["jpeg/q50", "jpeg/q75", "jpeg/q90", "meme", "instagram/lark", "instagram/moon"]
    with session_scope(sqlite_url) as s:
        register = jobqueue.enqueue_register_folder(s, str(big), name="big", kind="real", actor=LOCAL)
        others = [jobqueue.enqueue_make_condition(s, imageset_id=set_id, condition_id=c) for c in conditions]
    logs = [tmp_path / f"w{i}.log" for i in range(3)]
    procs = [_worker(log=log) for log in logs]
    try:
        for job_id in [register, *others]:
            view = _wait(sqlite_url, job_id, lambda v: v.status in ("done", "failed"))
            assert view.status == "done", view.traceback
        assert all(p.poll() is None for p in procs)  # no worker exited
    finally:
        for p in procs:
            _stop(p)
    with session_scope(sqlite_url, readonly=True) as s:
        reg = jobs.get_job(s, register)
        assert reg.result["added"] == 2000
        done_meanwhile = [
            v for v in (jobs.get_job(s, j) for j in others) if reg.started_at <= v.finished_at <= reg.finished_at
        ]
    assert done_meanwhile, "no other job finished while the registration ran"
    text = "".join(log.read_text(errors="replace") for log in logs)
    assert "database is locked" not in text and "Traceback" not in text
