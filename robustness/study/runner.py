"""Run a study through the job queue: build -> register/import -> derive -> infer, then tables.

Each phase queues only the jobs the store still needs (``robustness.study.store``) and waits
for them with a progress bar. Who runs the jobs:

- ``inline``: a worker in this process (``jobs.worker.JobWorker``, in a thread), serving the
  queue until it is empty; it also runs other jobs queued in the same store meanwhile.
- ``external``: a worker elsewhere (the dashboard's, or ``python -m jobs.worker``).
- ``auto`` (default): external when a live worker heartbeats in the store, else inline.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from db import jobs
from db.session import session_scope
from robustness.study import store
from robustness.study.schema import Study

__all__ = ["JobFailed", "RunOptions", "build_missing", "run_study"]

WORKER_MODES = ("auto", "inline", "external")
POLL_S = 0.5  # seconds between job status polls
INLINE_KINDS = ("import", "make-condition", "infer")  # the inline worker never trains


class JobFailed(RuntimeError):
    """A job of the study failed or was cancelled."""


@dataclass(frozen=True)
class RunOptions:
    url: str | None = None  # database URL (default: DATABASE_URL or data/spai.db)
    worker: str = "auto"  # auto | inline | external
    progress: bool = True  # tqdm bars on stderr
    threads: int | None = None  # torch CPU threads for inline inference


def build_missing(study: Study, log: Callable[[str], None] = print) -> list[str]:
    """Build image sets declared with ``build: demo`` whose files are absent; their names."""
    built = []
    for spec in study.image_sets:
        if spec.build != "demo":
            continue
        target = spec.csv if spec.csv is not None else spec.folder
        if target.exists():
            continue
        from spai.demo.build import BuildConfig, build_demo_set

        out = spec.root if spec.csv is not None else spec.folder
        if spec.csv is not None and spec.csv.parent != out:
            raise ValueError(
                f"image set {spec.name!r}: a demo build writes demo.csv in its root "
                f"folder; csv and root must agree ({spec.csv} vs {out})"
            )
        log(f"building the demo data set into {out} (python -m spai.demo build) ...")
        build_demo_set(BuildConfig(output=out), log=log)
        built.append(spec.name)
    return built


def _live_worker(url: str | None) -> bool:
    with session_scope(url, readonly=True) as s:
        return bool(jobs.alive_workers(s))


class _Inline:
    """A worker thread in this process, restarted while our jobs are still queued."""

    def __init__(self, url: str | None, threads: int | None) -> None:
        self.url, self.threads = url, threads
        self.thread: threading.Thread | None = None
        self.worker = None
        self.error: BaseException | None = None

    def ensure(self) -> None:
        if self.thread is not None and self.thread.is_alive():
            return
        from jobs.worker import JobWorker, WorkerConfig

        if self.threads:
            import torch

            torch.set_num_threads(self.threads)
        self.worker = JobWorker(WorkerConfig(once=True, kinds=INLINE_KINDS, poll_seconds=POLL_S), url=self.url)

        def serve() -> None:
            try:
                self.worker.serve()
            except BaseException as exc:  # surfaced by the waiting loop
                self.error = exc

        self.thread = threading.Thread(target=serve, name="study-worker", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        if self.worker is not None and self.thread is not None:
            self.worker.stop_event.set()
            self.thread.join(timeout=60)


def _wait(job_ids: list[int], what: str, opts: RunOptions, inline: _Inline | None) -> None:
    """Wait until every job is final; raise JobFailed naming the first that did not finish."""
    from tqdm import tqdm

    bar = tqdm(
        total=0, desc=what, unit=" items", disable=not opts.progress, file=sys.stderr, leave=True, dynamic_ncols=True
    )
    try:
        while True:
            with session_scope(opts.url, readonly=True) as s:
                views = [jobs.get_job(s, j) for j in job_ids]
            total = sum(v.progress_total or 0 for v in views)
            done = sum(v.progress_done if v.status != "done" else (v.progress_total or 0) for v in views)
            bar.total = max(total, done)
            bar.n = done
            finished = sum(v.status in jobs.FINAL_STATUSES for v in views)
            bar.set_postfix_str(f"{finished}/{len(views)} jobs", refresh=True)
            bad = [v for v in views if v.status in ("failed", "cancelled")]
            if bad:
                v = bad[0]
                why = (v.traceback or v.log_tail or "").strip().splitlines()
                raise JobFailed(f"job {v.id} ({v.kind}: {v.params}) {v.status}: {why[-1] if why else 'no message'}")
            if finished == len(views):
                return
            if inline is not None:
                if inline.error is not None:
                    raise JobFailed(f"the inline worker stopped: {inline.error!r}")
                if any(v.status == "queued" for v in views):
                    inline.ensure()
            time.sleep(POLL_S)
    finally:
        bar.close()


def _phase(
    name: str, specs: list[store.JobSpec], opts: RunOptions, inline: _Inline | None, log: Callable[[str], None]
) -> list[int]:
    if not specs:
        log(f"{name}: nothing to do (all stored)")
        return []
    with session_scope(opts.url) as s:
        ids = [store.enqueue(s, spec) for spec in specs]
    log(
        f"{name}: {len(ids)} job(s) queued: "
        + "; ".join(sp.what for sp in specs[:6])
        + (" ..." if len(specs) > 6 else "")
    )
    _wait(ids, name, opts, inline)
    return ids


def run_study(
    study: Study, opts: RunOptions = RunOptions(), log: Callable[[str], None] = print
) -> dict[str, list[int]]:
    """Do every job the study still needs and wait for them; returns job ids per phase."""
    if opts.worker not in WORKER_MODES:
        raise ValueError(f"worker must be one of {', '.join(WORKER_MODES)}, got {opts.worker!r}")
    build_missing(study, log)
    mode = opts.worker
    if mode == "auto":
        mode = "external" if _live_worker(opts.url) else "inline"
    if mode == "external" and not _live_worker(opts.url):
        log("no live worker in this store yet: jobs wait until one starts (python -m jobs.worker)")
    inline = _Inline(opts.url, opts.threads) if mode == "inline" else None
    done: dict[str, list[int]] = {}
    try:
        with session_scope(opts.url) as s:
            specs = store.plan_register(s, study)
        done["register"] = _phase("register", specs, opts, inline, log)
        with session_scope(opts.url) as s:
            ids = store.model_ids(s, study)
            specs = store.plan_derive(s, study)
        done["derive"] = _phase("derive", specs, opts, inline, log)
        with session_scope(opts.url) as s:
            specs = store.plan_infer(s, study, ids)
        done["infer"] = _phase("infer", specs, opts, inline, log)
    finally:
        if inline is not None:
            inline.stop()
    return done
