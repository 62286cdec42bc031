"""The job queue in the database: enqueue, atomic claim, heartbeat, progress, cancel, finish.

Claiming is atomic on both back-ends. PostgreSQL: ``SELECT ... FOR UPDATE SKIP LOCKED`` picks a
row no other worker holds, then it is updated in the same transaction. SQLite: one
``UPDATE ... WHERE id = (SELECT ...) AND <still claimable> RETURNING id`` inside a
``BEGIN IMMEDIATE`` transaction (a compare-and-set; writers are serialised by the lock).
A running job whose heartbeat is older than ``stale_after`` seconds counts as claimable too:
its worker died, and the new owner resumes it. A worker that finds its job re-owned
(``heartbeat`` returns ``None``) must stop.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from db.clock import seconds_ago, server_now
from db.models import JOB_STATUSES, Job, Worker, utcnow

STALE_AFTER_S = 60.0  # a running job without a heartbeat for this long is taken over
MAX_ATTEMPTS = 3  # starts of one job (claims) before it is failed instead of taken over again
ACTIVE_STATUSES = ("queued", "running")
ENQUEUE_LOCK = 1414  # PostgreSQL advisory lock class of enqueue (with the kind's hash)
LOG_TAIL_CHARS = 8_000  # how much of a job's log is kept
FINAL_STATUSES = ("done", "failed", "cancelled")


@dataclass(frozen=True)
class JobView:
    """A detached, read-only snapshot of a job row for pages and tests."""

    id: int
    kind: str
    params: dict[str, Any]
    status: str
    progress_done: int
    progress_total: int | None
    worker_id: str | None
    attempts: int
    cancel_requested: bool
    log_tail: str
    traceback: str | None
    result: dict[str, Any] | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    owner: str | None = None  # who queued it (db.owners); None without sign-in


def view(job: Job) -> JobView:
    return JobView(
        id=job.id,
        kind=job.kind,
        params=dict(job.params or {}),
        status=job.status,
        progress_done=job.progress_done,
        progress_total=job.progress_total,
        worker_id=job.worker_id,
        attempts=job.attempts,
        cancel_requested=job.cancel_requested,
        log_tail=job.log_tail or "",
        traceback=job.traceback,
        result=job.result,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        heartbeat_at=job.heartbeat_at,
        owner=job.owner,
    )


def enqueue(
    session: Session,
    kind: str,
    params: dict[str, Any] | None = None,
    *,
    owner: str | None = None,
) -> int:
    """Queue a job for ``owner`` and return its id; the same job (kind and parameters) already
    queued or running is not queued twice: its id is returned instead (whoever queued it)."""
    if not kind or not isinstance(kind, str):
        raise ValueError(f"job kind must be a non-empty string, got {kind!r}")
    params = dict(params or {})
    if session.get_bind().dialect.name == "postgresql":  # serialise enqueues of one kind
        session.execute(select(func.pg_advisory_xact_lock(ENQUEUE_LOCK, func.hashtext(kind))))
    same = _canonical(params)
    for job_id, other in session.execute(
        select(Job.id, Job.params).where(Job.kind == kind, Job.status.in_(ACTIVE_STATUSES)).order_by(Job.id)
    ):
        if _canonical(other or {}) == same:
            return job_id
    job = Job(
        kind=kind,
        params=params,
        status="queued",
        created_at=server_now(),
        progress_done=0,
        attempts=0,
        cancel_requested=False,
        log_tail="",
        owner=owner,
    )
    session.add(job)
    session.flush()
    return job.id


def _canonical(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, default=str)


def _claimable(stale_after: float):
    queued = and_(Job.status == "queued", Job.cancel_requested.is_(False))
    stale = and_(Job.status == "running", Job.heartbeat_at < seconds_ago(stale_after))
    return or_(queued, stale)


def fail_exhausted(
    session: Session,
    kinds: list[str] | None = None,
    *,
    stale_after: float = STALE_AFTER_S,
    max_attempts: int = MAX_ATTEMPTS,
) -> list[int]:
    """Claimable jobs already started ``max_attempts`` times (their workers died each time,
    e.g. on an image that kills the process): mark them failed with the reason."""
    where = and_(_claimable(stale_after), Job.attempts >= max_attempts)
    if kinds is not None:
        where = and_(where, Job.kind.in_(kinds))
    ids = list(session.scalars(select(Job.id).where(where).with_for_update()))
    for job_id in ids:
        job = session.get(Job, job_id)
        reason = (
            f"gave up after {job.attempts} attempts: each time, its worker "
            f"({job.worker_id or 'unknown'} last) stopped without finishing it (killed, "
            f"out of memory, or an input that crashes the process?); Retry starts it "
            f"again"
        )
        append_log(session, job_id, reason)
        session.execute(
            update(Job).where(Job.id == job_id).values(status="failed", finished_at=server_now(), traceback=reason)
        )
    return ids


def claim(
    session: Session,
    worker_id: str,
    kinds: list[str] | None = None,
    *,
    stale_after: float = STALE_AFTER_S,
    max_attempts: int = MAX_ATTEMPTS,
) -> Job | None:
    """Atomically take the oldest claimable job of ``kinds`` for ``worker_id``; ``None`` if none.

    The caller should commit right after, so the claim is visible to other workers. Times
    are the database server's (``db.clock``), so a host whose clock runs ahead takes over
    nothing that is alive.
    """
    where = and_(_claimable(stale_after), Job.attempts < max_attempts)
    if kinds is not None:
        where = and_(where, Job.kind.in_(kinds))
    values = {"status": "running", "worker_id": worker_id, "heartbeat_at": server_now(), "attempts": Job.attempts + 1}
    if session.get_bind().dialect.name == "postgresql":
        job_id = session.scalar(select(Job.id).where(where).order_by(Job.id).limit(1).with_for_update(skip_locked=True))
        if job_id is None:
            return None
        session.execute(update(Job).where(Job.id == job_id).values(**values))
    else:
        pick = select(Job.id).where(where).order_by(Job.id).limit(1).scalar_subquery()
        job_id = session.scalar(update(Job).where(Job.id == pick, where).values(**values).returning(Job.id))
        if job_id is None:
            return None
    session.execute(update(Job).where(Job.id == job_id, Job.started_at.is_(None)).values(started_at=server_now()))
    job = session.get(Job, job_id, populate_existing=True)
    return job


def heartbeat(
    session: Session,
    job_id: int,
    worker_id: str,
    *,
    done: int | None = None,
    total: int | None = None,
) -> bool | None:
    """Refresh the job's heartbeat (and progress); return its cancel flag.

    Returns ``None`` when the job is no longer running under ``worker_id`` (taken over or
    finished elsewhere): the caller must stop working on it.
    """
    values: dict[str, Any] = {"heartbeat_at": server_now()}
    if done is not None:
        values["progress_done"] = done
    if total is not None:
        values["progress_total"] = total
    return session.scalar(
        update(Job)
        .where(Job.id == job_id, Job.worker_id == worker_id, Job.status == "running")
        .values(**values)
        .returning(Job.cancel_requested)
    )


def append_log(session: Session, job_id: int, text: str) -> None:
    """Append a line to the job's log tail (only the last ``LOG_TAIL_CHARS`` are kept)."""
    job = session.get(Job, job_id, with_for_update=True)
    if job is None:
        raise KeyError(f"no job with id {job_id}")
    stamp = utcnow().strftime("%H:%M:%S")
    job.log_tail = ((job.log_tail or "") + f"[{stamp}] {text.rstrip()}\n")[-LOG_TAIL_CHARS:]


def finish(
    session: Session,
    job_id: int,
    worker_id: str,
    status: str,
    *,
    result: dict[str, Any] | None = None,
    traceback: str | None = None,
) -> bool:
    """Mark the job final (done, failed or cancelled) if ``worker_id`` still owns it."""
    if status not in FINAL_STATUSES:
        raise ValueError(f"final status must be one of {FINAL_STATUSES}, got {status!r}")
    values: dict[str, Any] = {"status": status, "finished_at": server_now(), "heartbeat_at": server_now()}
    if result is not None:
        values["result"] = result
    if traceback is not None:
        values["traceback"] = traceback
    res = session.execute(
        update(Job).where(Job.id == job_id, Job.worker_id == worker_id, Job.status == "running").values(**values)
    )
    return res.rowcount == 1


def request_cancel(session: Session, job_id: int) -> str:
    """Cancel a job: a queued one at once, a running one at its next check (within seconds).

    Returns the job's status after the call.
    """
    job = session.get(Job, job_id, with_for_update=True)
    if job is None:
        raise KeyError(f"no job with id {job_id}")
    if job.status == "queued":
        job.status, job.finished_at, job.cancel_requested = "cancelled", server_now(), True
        append_log(session, job_id, "cancelled before a worker started it")
    elif job.status == "running":
        job.cancel_requested = True
    return job.status


def reap_stale_cancelled(session: Session, *, stale_after: float = STALE_AFTER_S) -> int:
    """Jobs asked to cancel whose worker died: mark them cancelled (nobody will resume them)."""
    res = session.execute(
        update(Job)
        .where(Job.status == "running", Job.cancel_requested.is_(True), Job.heartbeat_at < seconds_ago(stale_after))
        .values(status="cancelled", finished_at=server_now())
    )
    return res.rowcount


def requeue(session: Session, job_id: int, *, allow_done: bool = False) -> None:
    """Put a failed or cancelled job (with ``allow_done``, also a done one, e.g. to redo its
    error rows) back in the queue; progress and results are kept."""
    job = session.get(Job, job_id, with_for_update=True)
    if job is None:
        raise KeyError(f"no job with id {job_id}")
    allowed = ("failed", "cancelled", "done") if allow_done else ("failed", "cancelled")
    if job.status not in allowed:
        raise ValueError(f"only {' or '.join(allowed)} jobs can be requeued; job {job_id} is {job.status}")
    job.status, job.cancel_requested, job.finished_at, job.traceback, job.attempts = (
        "queued",
        False,
        None,
        None,
        0,
    )  # a person's retry gets a fresh attempt budget


def get_job(session: Session, job_id: int) -> JobView:
    job = session.get(Job, job_id, populate_existing=True)
    if job is None:
        raise KeyError(f"no job with id {job_id}")
    return view(job)


def list_jobs(session: Session, *, statuses: list[str] | None = None, limit: int = 200) -> list[JobView]:
    """Newest first."""
    for s in statuses or []:
        if s not in JOB_STATUSES:
            raise ValueError(f"unknown job status {s!r}; valid: {', '.join(JOB_STATUSES)}")
    stmt = select(Job).order_by(Job.id.desc()).limit(limit)
    if statuses:
        stmt = stmt.where(Job.status.in_(statuses))
    return [view(j) for j in session.scalars(stmt)]


# --- worker registry -------------------------------------------------------------------------


def register_worker(session: Session, worker_id: str, hostname: str, pid: int) -> None:
    session.merge(
        Worker(
            id=worker_id,
            hostname=hostname,
            pid=pid,
            started_at=server_now(),
            heartbeat_at=server_now(),
            stopped_at=None,
            current_job_id=None,
        )
    )


def worker_heartbeat(session: Session, worker_id: str, current_job_id: int | None) -> None:
    session.execute(
        update(Worker).where(Worker.id == worker_id).values(heartbeat_at=server_now(), current_job_id=current_job_id)
    )


def worker_stopped(session: Session, worker_id: str) -> None:
    session.execute(update(Worker).where(Worker.id == worker_id).values(stopped_at=server_now(), current_job_id=None))


def alive_workers(session: Session, *, stale_after: float = STALE_AFTER_S) -> list[Worker]:
    """Workers with a recent heartbeat that have not said they stopped."""
    return list(
        session.scalars(
            select(Worker).where(Worker.stopped_at.is_(None), Worker.heartbeat_at >= seconds_ago(stale_after))
        )
    )


def release(session: Session, job_id: int, worker_id: str) -> bool:
    """Give a running job back to the queue (a worker shutting down cleanly); it resumes later."""
    res = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.worker_id == worker_id, Job.status == "running")
        .values(status="queued", worker_id=None)
    )
    return res.rowcount == 1
