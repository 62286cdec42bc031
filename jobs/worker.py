"""The background worker: ``python -m jobs.worker [--once] [--poll-seconds S] ...``.

One process: it registers itself, claims the oldest claimable job (``db.jobs``, the database
server's clock), parses its parameters (``jobs.params``), runs the handler registered for its
kind (``jobs.registry``) and records how it ended. A heartbeat thread refreshes the job and
worker rows every few seconds and picks up cancel requests; handlers check
``ctx.should_stop()`` between batches. A job silent for ``--stale-after`` is taken over by
another worker; after ``max_attempts`` starts it ends ``failed`` with the reason. This module
must not import streamlit (``python -m dashboard.worker`` is an alias kept for one release).
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

import jobs.derive  # noqa: F401  (the built-in kinds register themselves on import)
import jobs.imports  # noqa: F401
import jobs.infer  # noqa: F401
import jobs.train  # noqa: F401
from db import jobs as queue
from db.paths import data_dir
from db.session import (
    REPO_ROOT,
    StoreUnavailable,
    check_store,
    database_url,
    init_db,
    session_scope,
)
from jobs.context import HEARTBEAT_S, JobCancelled, JobContext, JobLost, WorkerStopping
from jobs.executors import ENV_EXECUTOR, EXECUTORS
from jobs.registry import KINDS, JobKind, get_kind
from core.cli_errors import UserError, closest, one_line, run_main

STALE_HEARTBEATS = 3  # stale_after must cover this many heartbeat periods
STORE_BACKOFF_MAX_S = 30.0  # longest wait before retrying the store after an error


@dataclass(frozen=True)
class WorkerConfig:
    poll_seconds: float = 2.0  # sleep between queue polls when idle
    heartbeat_seconds: float = HEARTBEAT_S  # job/worker heartbeat and cancel-check period
    stale_after: float = queue.STALE_AFTER_S  # take over running jobs silent for this long
    once: bool = False  # exit when the queue has nothing claimable
    max_jobs: int | None = None  # exit after this many jobs
    kinds: tuple[str, ...] | None = None  # restrict to these kinds (default: all registered)
    parent_pid: int | None = None  # exit when this process (the dashboard server) is gone
    idle_exit: float | None = None  # exit after this many seconds without a job
    max_attempts: int = queue.MAX_ATTEMPTS  # starts of a job before it is failed, not taken over


# --- the worker loop --------------------------------------------------------------------------


class JobWorker:
    """One worker process: registry row, heartbeat thread, claim-run loop."""

    def __init__(
        self, config: WorkerConfig = WorkerConfig(), url: str | None = None, worker_id: str | None = None
    ) -> None:
        self.config, self.url = config, url
        self.id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.stop_event = threading.Event()
        self.ctx: JobContext | None = None
        self._hb_stop = threading.Event()

    def _heartbeat_loop(self) -> None:
        while not self._hb_stop.wait(self.config.heartbeat_seconds):
            ctx = self.ctx
            try:
                with session_scope(self.url) as s:
                    queue.worker_heartbeat(s, self.id, ctx.job_id if ctx else None)
                    if ctx is not None:
                        flag = queue.heartbeat(s, ctx.job_id, self.id)
                if ctx is not None:
                    ctx.apply_flag(flag)
            except Exception as exc:  # the store may be briefly unreachable: retry next tick;
                # the job's work stops once beats stay missing (JobContext._lost)
                print(f"[worker {self.id}] heartbeat failed: {one_line(exc)}", file=sys.stderr)

    def _watch_parent(self) -> None:
        """Stop the worker (its job goes back to the queue) once the process that started it,
        the dashboard server, is gone."""
        pid = self.config.parent_pid
        our_parent = pid == os.getppid()  # then a new parent means it died (pid reuse-proof)
        while not self.stop_event.wait(self.config.heartbeat_seconds):
            if (os.getppid() != pid) if our_parent else not pid_alive(pid):
                print(f"[worker {self.id}] process {pid} that started it is gone: stopping", flush=True)
                self.stop_event.set()

    def run_one(self) -> int | None:
        """Claim and run one job; return its id, or None when nothing was claimable."""
        kinds = list(self.config.kinds or sorted(KINDS))
        cfg = self.config
        with session_scope(self.url) as s:
            queue.reap_stale_cancelled(s, stale_after=cfg.stale_after)
            for job_id in queue.fail_exhausted(s, kinds, stale_after=cfg.stale_after, max_attempts=cfg.max_attempts):
                print(
                    f"[worker {self.id}] job {job_id} failed: attempt limit ({cfg.max_attempts}) reached",
                    file=sys.stderr,
                )
            job = queue.claim(s, self.id, kinds, stale_after=cfg.stale_after, max_attempts=cfg.max_attempts)
            if job is None:
                return None
            job_id, kind, raw, owner = job.id, job.kind, dict(job.params or {}), job.owner
            resumed = job.attempts > 1
            queue.append_log(s, job_id, f"{'resumed' if resumed else 'started'} by worker {self.id}")
        try:
            kind_of = get_kind(kind)
            params = kind_of.parse(raw)
        except (KeyError, ValueError) as exc:  # nothing ran: no run to mark
            self._end(job_id, "failed", traceback=traceback.format_exc(), note=f"failed: {type(exc).__name__}: {exc}")
            return job_id
        ctx = JobContext(
            job_id,
            kind,
            params,
            self.id,
            self.url,
            stop_event=self.stop_event,
            lost_after=cfg.stale_after - cfg.heartbeat_seconds,
            owner=owner,
        )
        self.ctx = ctx
        try:
            result = kind_of.run(ctx)
            ctx.check()
            self._end(job_id, "done", result=result or {})
        except JobCancelled:
            self._end(job_id, "cancelled")
            self._stopped(kind_of, ctx, "cancelled")
        except JobLost as exc:
            print(f"[worker {self.id}] {exc}", file=sys.stderr)
        except WorkerStopping:
            with session_scope(self.url) as s:
                queue.append_log(s, job_id, f"worker {self.id} stopped; job requeued")
                queue.release(s, job_id, self.id)
        except Exception as exc:
            self._end(job_id, "failed", traceback=traceback.format_exc(), note=f"failed: {type(exc).__name__}: {exc}")
            self._stopped(kind_of, ctx, "failed")
        finally:
            self.ctx = None
        return job_id

    def _end(
        self,
        job_id: int,
        status: str,
        *,
        result: dict | None = None,
        traceback: str | None = None,
        note: str | None = None,
    ) -> None:
        """Record the job's final status, with a log line."""
        with session_scope(self.url) as s:
            queue.append_log(s, job_id, note or status)
            queue.finish(s, job_id, self.id, status, result=result, traceback=traceback)

    @staticmethod
    def _stopped(kind: JobKind, ctx: JobContext, status: str) -> None:
        """Let the kind react to a cancel or a failure (an infer job marks its run)."""
        if kind.on_stop is not None:
            kind.on_stop(ctx, status)

    def serve(self) -> int:
        """Run jobs until stopped (or, with ``once``, until nothing is claimable)."""
        init_db(self.url)
        with session_scope(self.url) as s:
            queue.register_worker(s, self.id, socket.gethostname(), os.getpid())
        hb = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)
        hb.start()
        if self.config.parent_pid is not None:
            threading.Thread(target=self._watch_parent, name="parent-watch", daemon=True).start()
        n, idle_since, errors = 0, time.monotonic(), 0
        try:
            while not self.stop_event.is_set():
                if self.config.max_jobs is not None and n >= self.config.max_jobs:
                    break
                try:
                    job_id = self.run_one()
                except (SQLAlchemyError, OSError) as exc:  # store busy or unreachable
                    delay = min(STORE_BACKOFF_MAX_S, self.config.poll_seconds * 2**errors)
                    errors += 1
                    print(
                        f"[worker {self.id}] store error ({one_line(exc)}); retrying in {delay:g} s",
                        file=sys.stderr,
                        flush=True,
                    )
                    self.stop_event.wait(delay)
                    continue
                errors = 0
                if job_id is None:
                    if self.config.once:
                        break
                    idle = self.config.idle_exit
                    if idle is not None and time.monotonic() - idle_since >= idle:
                        print(f"[worker {self.id}] idle for {idle:g} s: exiting", flush=True)
                        break
                    self.stop_event.wait(self.config.poll_seconds)
                else:
                    n, idle_since = n + 1, time.monotonic()
        finally:
            self._hb_stop.set()
            hb.join(timeout=5)
            with session_scope(self.url) as s:
                queue.worker_stopped(s, self.id)
        return n


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    try:  # Linux: a zombie (exited, not yet reaped) is state Z in /proc/<pid>/stat
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def live_workers(session, *, stale_after: float = queue.STALE_AFTER_S) -> list[Any]:
    """``db.jobs.alive_workers`` less those of this machine whose process is gone (a killed worker
    counts as dead at once, not only once its heartbeat is stale)."""
    host = socket.gethostname()
    return [w for w in queue.alive_workers(session, stale_after=stale_after) if w.hostname != host or pid_alive(w.pid)]


def load_plugins(extra: str | None = None) -> None:
    """Import the handler modules named in ``extra`` (``SPAI_WORKER_PLUGINS``: comma-separated
    module names; see ``jobs.registry``)."""
    for name in [m.strip() for m in (extra or "").split(",") if m.strip()]:
        importlib.import_module(name)


def ensure_worker_running(
    url: str | None = None,
    *,
    stale_after: float = queue.STALE_AFTER_S,
    log_path: str | Path | None = None,
    parent_pid: int | None = None,
    idle_exit: float | None = None,
) -> subprocess.Popen | None:
    """Start a detached ``python -m jobs.worker`` unless a live worker heartbeats; it
    exits when process ``parent_pid`` is gone or after ``idle_exit`` seconds without a job.

    Returns the started process, or None when one was already alive.
    """
    init_db(url)
    with session_scope(url, readonly=True) as s:
        if live_workers(s, stale_after=stale_after):
            return None
    log = Path(log_path) if log_path else data_dir() / "worker.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, DATABASE_URL=database_url(url))
    args = [sys.executable, "-m", "jobs.worker"]
    args += ["--parent-pid", str(parent_pid)] if parent_pid is not None else []
    args += ["--idle-exit", str(idle_exit)] if idle_exit is not None else []
    with open(log, "ab") as out:
        return subprocess.Popen(
            args,
            cwd=str(REPO_ROOT),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def check_config(config: WorkerConfig) -> None:
    """UserError for settings that cannot work: non-positive periods, a stale limit a live
    worker could hit between two heartbeats, job kinds nobody handles."""
    for name in ("poll_seconds", "heartbeat_seconds", "stale_after"):
        if not getattr(config, name) > 0:
            raise UserError(f"--{name.replace('_', '-')} must be positive, got {getattr(config, name)}")
    if config.stale_after < STALE_HEARTBEATS * config.heartbeat_seconds:
        raise UserError(
            f"--stale-after ({config.stale_after:g} s) must be at least "
            f"{STALE_HEARTBEATS} x --heartbeat-seconds "
            f"({STALE_HEARTBEATS * config.heartbeat_seconds:g} s), or live jobs "
            f"would be taken over"
        )
    for kind in config.kinds or ():
        if kind not in KINDS:
            raise UserError(f"unknown job kind {kind!r} in --kinds{closest(kind, KINDS)}")


def main(argv: list[str] | None = None) -> int:
    """``python -m jobs.worker``: user errors print one line and exit with status 2."""
    return run_main(lambda: _main(argv), user_errors=(StoreUnavailable,))


def _main(argv: list[str] | None) -> int:
    ap = argparse.ArgumentParser(prog="python -m jobs.worker", description=__doc__.split("\n")[0])
    ap.add_argument("--once", action="store_true", help="exit when no job is claimable instead of polling")
    ap.add_argument("--poll-seconds", type=float, default=WorkerConfig.poll_seconds)
    ap.add_argument("--heartbeat-seconds", type=float, default=WorkerConfig.heartbeat_seconds)
    ap.add_argument(
        "--stale-after",
        type=float,
        default=WorkerConfig.stale_after,
        help="seconds without heartbeat after which a running job is taken over",
    )
    ap.add_argument("--max-jobs", type=int, default=None)
    ap.add_argument("--kinds", default=None, help="comma-separated job kinds to serve")
    ap.add_argument("--database-url", default=None, help="overrides DATABASE_URL")
    ap.add_argument(
        "--parent-pid", type=int, default=None, help="exit when this process is gone (the dashboard passes its own pid)"
    )
    ap.add_argument("--idle-exit", type=float, default=None, help="exit after this many seconds without a job")
    ap.add_argument(
        "--executor",
        choices=list(EXECUTORS),
        default=None,
        help="executor of infer/make-condition jobs that name none (SPAI_EXECUTOR)",
    )
    ap.add_argument(
        "--ray-address",
        default=None,
        help="Ray cluster for the 'ray' executor; 'auto' joins this node's cluster (RAY_ADDRESS)",
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads for this process (default: torch's choice, one per "
        "core); with several workers on one machine give each cores / workers",
    )
    args = ap.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads must be at least 1, got {args.threads}")
    load_plugins(os.environ.get("SPAI_WORKER_PLUGINS"))
    config = WorkerConfig(
        poll_seconds=args.poll_seconds,
        heartbeat_seconds=args.heartbeat_seconds,
        stale_after=args.stale_after,
        once=args.once,
        max_jobs=args.max_jobs,
        kinds=tuple(k.strip() for k in args.kinds.split(",")) if args.kinds else None,
        parent_pid=args.parent_pid,
        idle_exit=args.idle_exit,
    )
    check_config(config)
    check_store(args.database_url)
    import torch  # every scoring and training handler needs it

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.executor:
        os.environ[ENV_EXECUTOR] = args.executor
    if args.ray_address:
        os.environ["RAY_ADDRESS"] = args.ray_address
    worker = JobWorker(config, url=args.database_url)

    def _stop(signum, _frame) -> None:
        worker.stop_event.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(
        f"[worker {worker.id}] serving {database_url(args.database_url)} with "
        f"{torch.get_num_threads()} torch thread(s)",
        flush=True,
    )
    n = worker.serve()
    print(f"[worker {worker.id}] exiting after {n} job(s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
