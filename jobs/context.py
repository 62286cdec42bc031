"""The job skeleton's context: what a handler gets while its job runs.

``JobContext`` carries the typed parameters (``jobs.params``), a progress counter that the
handler advances as it writes (``advance`` adds, it never recounts the store), the job's log,
and the stop checks a heartbeat thread feeds (cancel requested, job taken over, worker
stopping). ``owned_session`` is the one unit of work a handler writes results in: it confirms
the worker still owns the job, and the progress of that batch goes in the same transaction.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from db import jobs as queue
from db.session import session_scope

HEARTBEAT_S = 2.0  # job/worker heartbeat and cancel-check period (WorkerConfig's default)


class JobCancelled(Exception):
    """The job was asked to cancel."""


class JobLost(Exception):
    """Another worker owns the job now (our heartbeat went stale)."""


class WorkerStopping(Exception):
    """The worker received SIGTERM/SIGINT; the job goes back to the queue."""


@dataclass
class JobContext:
    """What a handler gets: the job's params, progress/log reporting and stop checks."""

    job_id: int
    kind: str
    params: Any  # a jobs.params record (the raw dict for a kind without one)
    worker_id: str
    url: str | None = None
    cancel_event: threading.Event = field(default_factory=threading.Event)
    lost_event: threading.Event = field(default_factory=threading.Event)
    stop_event: threading.Event = field(default_factory=threading.Event)
    done: int = 0  # the progress counter
    total: int | None = None
    lost_after: float = queue.STALE_AFTER_S - HEARTBEAT_S
    beat_ok_at: float = field(default_factory=time.monotonic)  # last heartbeat that landed
    owner: str | None = None  # who queued the job: rows it creates are theirs (db.owners)

    def should_stop(self) -> bool:
        return self.cancel_event.is_set() or self._lost() or self.stop_event.is_set()

    def _lost(self) -> bool:
        """Taken over, or no heartbeat has landed for ``lost_after`` seconds (the store
        unreachable, or this process was paused): one heartbeat period before the stale limit,
        when another worker may take the job over, its work stops."""
        if time.monotonic() - self.beat_ok_at > self.lost_after:
            self.lost_event.set()
        return self.lost_event.is_set()

    def check(self) -> None:
        """Raise if the job must stop now (call between batches)."""
        if self._lost():
            raise JobLost(
                f"job {self.job_id}: taken over by another worker, or no heartbeat "
                f"for {time.monotonic() - self.beat_ok_at:.1f} s"
            )
        if self.cancel_event.is_set():
            raise JobCancelled(f"job {self.job_id} cancelled")
        if self.stop_event.is_set():
            raise WorkerStopping(f"worker {self.worker_id} stopping")

    def progress(self, done: int, total: int | None = None, *, session: Session | None = None) -> None:
        """Set the counter (and the total, when given) and write it with a heartbeat, in
        ``session`` when given, else in a unit of work of its own."""
        self.done, self.total = done, total if total is not None else self.total
        if session is not None:
            self._beat(session, progress=True)
            return
        with session_scope(self.url) as s:
            self._beat(s, progress=True)

    def advance(self, n: int, *, session: Session | None = None) -> None:
        """Add ``n`` finished items to the counter and write it (see ``progress``)."""
        self.progress(self.done + n, session=session)

    @contextmanager
    def owned_session(self) -> Iterator[Session]:
        """A unit of work that commits only while this worker still owns the job: the job row
        is heartbeaten (and locked) first, and ``JobLost`` is raised, writing nothing, when
        another worker took it over (e.g. after this process was paused)."""
        self.check()
        with session_scope(self.url) as s:
            self._beat(s)
            self.check()
            yield s

    def log(self, message: str, *, session: Session | None = None) -> None:
        """Append a line to the job's log, in ``session`` when given."""
        if session is not None:
            queue.append_log(session, self.job_id, message)
            return
        with session_scope(self.url) as s:
            queue.append_log(s, self.job_id, message)

    def _beat(self, session: Session, *, progress: bool = False) -> None:
        flag = queue.heartbeat(
            session,
            self.job_id,
            self.worker_id,
            done=self.done if progress else None,
            total=self.total if progress else None,
        )
        self.apply_flag(flag)

    def apply_flag(self, flag: bool | None) -> None:
        """Apply what a heartbeat returned: None = taken over, True = cancel requested."""
        if flag is None:
            self.lost_event.set()
            return
        self.beat_ok_at = time.monotonic()
        if flag:
            self.cancel_event.set()
