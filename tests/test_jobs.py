"""Job queue: atomic claims, stale-heartbeat takeover, cancel; on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

from PIL import Image as PILImage
from sqlalchemy import func, select, update

from db import jobs
from db.imagesets import register_folder
from db.models import DerivedImage, Job, utcnow
from db.session import REPO_ROOT, session_scope


def test_claim_is_exclusive_under_concurrency(db_url: str) -> None:
    with session_scope(db_url) as s:
        ids = [jobs.enqueue(s, "import", {"n": i}) for i in range(24)]
    claimed: list[tuple[str, int]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def claimer(name: str) -> None:
        try:
            barrier.wait()
            while True:
                with session_scope(db_url) as s:
                    job = jobs.claim(s, name, ["import"])
                    if job is None:
                        return
                    claimed.append((name, job.id))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    assert sorted(j for _, j in claimed) == ids  # every job once, none twice
    with session_scope(db_url) as s:
        rows = s.scalars(select(Job)).all()
        assert {j.status for j in rows} == {"running"} and {j.attempts for j in rows} == {1}
        owners = {j.id: j.worker_id for j in rows}
    assert owners == {j: name for name, j in claimed}


def test_claim_respects_kinds_and_order(db_url: str) -> None:
    with session_scope(db_url) as s:
        a = jobs.enqueue(s, "train", {})
        b = jobs.enqueue(s, "import", {"n": 1})
        c = jobs.enqueue(s, "import", {"n": 2})
    with session_scope(db_url) as s:
        assert jobs.claim(s, "w", ["import"]).id == b
    with session_scope(db_url) as s:
        assert jobs.claim(s, "w", ["import"]).id == c
    with session_scope(db_url) as s:
        assert jobs.claim(s, "w", ["import"]) is None
        assert jobs.get_job(s, a).status == "queued"


def test_stale_running_job_is_taken_over(db_url: str) -> None:
    with session_scope(db_url) as s:
        job_id = jobs.enqueue(s, "infer", {})
    with session_scope(db_url) as s:
        assert jobs.claim(s, "dead", ["infer"]).id == job_id
    with session_scope(db_url) as s:  # fresh heartbeat: nobody else may take it
        assert jobs.claim(s, "alive", ["infer"], stale_after=30) is None
        s.execute(update(Job).values(heartbeat_at=utcnow() - timedelta(seconds=120)))
    with session_scope(db_url) as s:
        job = jobs.claim(s, "alive", ["infer"], stale_after=30)
        assert job.id == job_id and job.attempts == 2 and job.worker_id == "alive"
    with session_scope(db_url) as s:
        assert jobs.heartbeat(s, job_id, "dead") is None  # the old owner must stop
        assert jobs.heartbeat(s, job_id, "alive", done=3, total=10) is False
        assert not jobs.finish(s, job_id, "dead", "done")
        assert jobs.finish(s, job_id, "alive", "done", result={"ok": 1})
    with session_scope(db_url) as s:
        view = jobs.get_job(s, job_id)
    assert (view.status, view.progress_done, view.progress_total) == ("done", 3, 10)


def test_the_same_job_is_not_queued_twice_while_active(db_url: str) -> None:
    params = {"model_id": 1, "imageset_id": 2, "condition_id": "meme"}
    with session_scope(db_url) as s:
        first = jobs.enqueue(s, "infer", params)
        assert jobs.enqueue(s, "infer", dict(reversed(params.items()))) == first  # key order
        other = jobs.enqueue(s, "infer", params | {"condition_id": "original"})
        assert other != first and jobs.enqueue(s, "make-condition", params) not in (first, other)
        assert jobs.claim(s, "w", ["infer"]).id == first
    with session_scope(db_url) as s:
        assert jobs.enqueue(s, "infer", params) == first  # running: still the same job
        assert jobs.finish(s, first, "w", "done")
    with session_scope(db_url) as s:
        assert jobs.enqueue(s, "infer", params) not in (first, other)  # finished: a new job


def test_job_started_too_often_fails_with_the_reason(db_url: str) -> None:
    with session_scope(db_url) as s:
        job_id = jobs.enqueue(s, "infer", {"n": 1})
    for attempt in range(1, 3):
        with session_scope(db_url) as s:  # its worker dies each time (heartbeat goes stale)
            assert jobs.claim(s, f"w{attempt}", ["infer"], max_attempts=2).id == job_id
            s.execute(update(Job).values(heartbeat_at=utcnow() - timedelta(seconds=120)))
    with session_scope(db_url) as s:
        assert jobs.claim(s, "w3", ["infer"], stale_after=30, max_attempts=2) is None
        assert jobs.fail_exhausted(s, ["infer"], stale_after=30, max_attempts=2) == [job_id]
    with session_scope(db_url) as s:
        view = jobs.get_job(s, job_id)
        assert view.status == "failed" and view.attempts == 2
        assert "gave up after 2 attempts" in view.traceback and "w2" in view.traceback
        jobs.requeue(s, job_id)  # a person's retry gets a fresh budget
    with session_scope(db_url) as s:
        assert jobs.claim(s, "w4", ["infer"], max_attempts=2).id == job_id


def test_cancel_queued_and_running(db_url: str) -> None:
    with session_scope(db_url) as s:
        queued = jobs.enqueue(s, "infer", {"n": 1})
        running = jobs.enqueue(s, "infer", {"n": 2})
        s.execute(update(Job).where(Job.id == running).values(status="running", worker_id="w", heartbeat_at=utcnow()))
    with session_scope(db_url) as s:
        assert jobs.request_cancel(s, queued) == "cancelled"
        assert jobs.request_cancel(s, running) == "running"
    with session_scope(db_url) as s:  # the Jobs page showed "(empty log)" for it
        assert s.get(Job, queued).log_tail.endswith("] cancelled before a worker started it\n")
        assert jobs.claim(s, "other", ["infer"]) is None  # cancelled jobs are never claimed
        assert jobs.heartbeat(s, running, "w") is True  # the worker learns of the cancel
        assert jobs.finish(s, running, "w", "cancelled")
        jobs.requeue(s, queued)
    with session_scope(db_url) as s:
        assert jobs.claim(s, "other", ["infer"]).id == queued


def test_log_tail_is_bounded(db_url: str) -> None:
    with session_scope(db_url) as s:
        job_id = jobs.enqueue(s, "import", {})
        for i in range(2000):
            jobs.append_log(s, job_id, f"line {i}")
    with session_scope(db_url) as s:
        tail = jobs.get_job(s, job_id).log_tail
    assert len(tail) <= jobs.LOG_TAIL_CHARS and tail.rstrip().endswith("line 1999")


def test_two_worker_processes_run_each_job_once(db_url: str, tmp_path: Path) -> None:
    """Two real worker processes drain a queue of make-condition jobs; each job runs once."""
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(2):
        PILImage.new("RGB", (40 + i, 30), (i * 90, 60, 120)).save(folder / f"{i}.png")
    conditions = ["jpeg/q75", "jpeg/q90", "blur/s1.0", "original", "jpeg/q50", "crop/center-0.8"]
    with session_scope(db_url) as s:
        set_id = register_folder(s, folder, name="tiny", kind="real").imageset_ids["tiny"]
        job_ids = [jobs.enqueue(s, "make-condition", {"imageset_id": set_id, "condition_id": c}) for c in conditions]
    env = dict(os.environ, OMP_NUM_THREADS="2")  # --threads wins over the environment
    cmd = [sys.executable, "-m", "jobs.worker", "--once", "--poll-seconds", "0.1", "--threads", "1"]
    procs = [
        subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert all("with 1 torch thread(s)" in out for out in outs), outs
    with session_scope(db_url) as s:
        rows = s.scalars(select(Job).where(Job.id.in_(job_ids))).all()
        assert {j.status for j in rows} == {"done"}, [(j.status, j.traceback) for j in rows]
        assert {j.attempts for j in rows} == {1}
        assert all(j.log_tail.count("started by") == 1 for j in rows)
        n_derived = s.scalar(select(func.count()).select_from(DerivedImage))
        assert n_derived == 2 * len(conditions)
