"""Background worker: ``python -m dashboard.worker [--once] [--poll-seconds S]``.

Claims jobs from the database (see ``db.jobs``) and runs the handler registered for the job's
kind. A heartbeat thread refreshes the job and worker rows every few seconds and picks up cancel
requests; handlers check ``ctx.should_stop()`` between images and batches. Predictions are
written in batches with ON CONFLICT DO NOTHING, and a restarted job skips images already scored,
so a killed worker loses at most one batch and never duplicates a prediction. This module must
not import streamlit.

Adding a job kind (e.g. training, from another module)::

    from dashboard.worker import JobContext, register_handler

    def run_train(ctx: JobContext) -> dict | None:
        ...  # ctx.params, ctx.progress(done, total), ctx.log(msg), ctx.check()

    register_handler("train", run_train)

and list the module in ``SPAI_WORKER_PLUGINS`` (comma-separated module names imported at start)
or in ``PLUGIN_MODULES`` below.
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import SQLAlchemyError

from dashboard.paths import data_dir, join_inside, slug
from db import jobs
from db.imagesets import resolve_inside
from db.models import ORIGINAL, DerivedImage, Image, ImageSet, Model, Run, utcnow
from db.queries import (
    bulk_insert_predictions,
    count_predictions,
    derived_paths,
    get_or_create_condition,
    get_or_create_run,
    images_without_prediction,
    insert_ignore,
)
from db.session import (
    REPO_ROOT,
    StoreUnavailable,
    check_store,
    database_url,
    init_db,
    session_scope,
)
from spai.cli_errors import UserError, closest, one_line, run_main

PLUGIN_MODULES: tuple[str, ...] = ("dashboard.train_job",)  # modules calling register_handler()
REGISTER_PROBLEMS_KEPT = 500  # per-row problems kept in a registration job's result
PROBLEMS_LOGGED = 50  # per-row problems of an import or registration written to the job log
NO_FILE_ERROR = "image file not available (predictions were imported without images)"
STALE_HEARTBEATS = 3  # stale_after must cover this many heartbeat periods
STORE_BACKOFF_MAX_S = 30.0  # longest wait before retrying the store after an error
EXECUTORS = ("local", "ray")  # where infer and make-condition jobs run (see dashboard.ray_executor)


@dataclass(frozen=True)
class WorkerConfig:
    poll_seconds: float = 2.0  # sleep between queue polls when idle
    heartbeat_seconds: float = 2.0  # job/worker heartbeat and cancel-check period
    stale_after: float = jobs.STALE_AFTER_S  # take over running jobs silent for this long
    once: bool = False  # exit when the queue has nothing claimable
    max_jobs: int | None = None  # exit after this many jobs
    kinds: tuple[str, ...] | None = None  # restrict to these kinds (default: all registered)
    parent_pid: int | None = None  # exit when this process (the dashboard server) is gone
    idle_exit: float | None = None  # exit after this many seconds without a job
    max_attempts: int = jobs.MAX_ATTEMPTS  # starts of a job before it is failed, not taken over


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
    params: dict[str, Any]
    worker_id: str
    url: str | None = None
    cancel_event: threading.Event = field(default_factory=threading.Event)
    lost_event: threading.Event = field(default_factory=threading.Event)
    stop_event: threading.Event = field(default_factory=threading.Event)
    done: int = 0
    total: int | None = None
    lost_after: float = WorkerConfig.stale_after - WorkerConfig.heartbeat_seconds
    beat_ok_at: float = field(default_factory=time.monotonic)  # last heartbeat that landed
    owner: str | None = None  # who queued the job: rows it creates are theirs (db.owners)

    def should_stop(self) -> bool:
        return (self.cancel_event.is_set() or self._lost() or self.stop_event.is_set())

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
            raise JobLost(f"job {self.job_id}: taken over by another worker, or no heartbeat "
                          f"for {time.monotonic() - self.beat_ok_at:.1f} s")
        if self.cancel_event.is_set():
            raise JobCancelled(f"job {self.job_id} cancelled")
        if self.stop_event.is_set():
            raise WorkerStopping(f"worker {self.worker_id} stopping")

    def progress(self, done: int, total: int | None = None) -> None:
        """Record progress and write it (with a heartbeat) to the job row at once."""
        self.done, self.total = done, total if total is not None else self.total
        with session_scope(self.url) as s:
            flag = jobs.heartbeat(s, self.job_id, self.worker_id, done=self.done,
                                  total=self.total)
        self._apply_flag(flag)

    @contextmanager
    def owned_session(self) -> Iterator[Any]:
        """A unit of work that commits only while this worker still owns the job: the job row
        is heartbeaten (and locked) first, and ``JobLost`` is raised, writing nothing, when
        another worker took it over (e.g. after this process was paused)."""
        self.check()
        with session_scope(self.url) as s:
            flag = jobs.heartbeat(s, self.job_id, self.worker_id)
            self._apply_flag(flag)
            self.check()
            yield s

    def log(self, message: str) -> None:
        with session_scope(self.url) as s:
            jobs.append_log(s, self.job_id, message)

    def _apply_flag(self, flag: bool | None) -> None:
        """Apply what a heartbeat returned: None = taken over, True = cancel requested."""
        if flag is None:
            self.lost_event.set()
            return
        self.beat_ok_at = time.monotonic()
        if flag:
            self.cancel_event.set()


Handler = Callable[[JobContext], "dict[str, Any] | None"]
HANDLERS: dict[str, Handler] = {}


def register_handler(kind: str, fn: Handler, *, replace: bool = False) -> Handler:
    """Register the function that runs jobs of ``kind``; a duplicate kind raises."""
    if kind in HANDLERS and not replace and HANDLERS[kind] is not fn:
        raise ValueError(f"a handler for job kind {kind!r} is already registered")
    HANDLERS[kind] = fn
    return fn


def get_handler(kind: str) -> Handler:
    try:
        return HANDLERS[kind]
    except KeyError:
        raise KeyError(f"No handler for job kind {kind!r}. Available: "
                       f"{', '.join(sorted(HANDLERS))}") from None


# --- paths ------------------------------------------------------------------------------------


def derived_stem(imageset_id: int, imageset: str, condition_id: str, relpath: str) -> Path:
    """``data/derived/<id>-<set name as a slug>/<condition id, '/' -> '__'>/<relpath without
    extension>``; ``PathNotAllowed`` for a relpath with ``..`` or an absolute one."""
    try:
        folder = f"{imageset_id}-{slug(imageset)}"
    except ValueError:  # a name without letters or digits
        folder = str(imageset_id)
    base = data_dir() / "derived" / folder / condition_id.replace("/", "__")
    return join_inside(base, relpath).with_suffix("")


def image_file(iset: ImageSet, im: Image) -> tuple[Path | None, str | None]:
    """The file of a stored image, checked at read time to lie inside its set's root (a
    symlink planted after registration is refused), or None and the reason."""
    if not im.has_file or iset.root is None:
        return None, NO_FILE_ERROR
    if im.error:
        return None, im.error
    try:
        return resolve_inside(Path(iset.root), im.relpath), None
    except ValueError as exc:
        return None, str(exc)


def _stored(path: Path) -> str:
    """Paths under the repository are stored relative to it, others absolute."""
    path = Path(path).resolve()
    return path.relative_to(REPO_ROOT).as_posix() if path.is_relative_to(REPO_ROOT) else str(path)


def resolve_stored(path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else REPO_ROOT / p


# --- detector cache (loaded once per worker process) ------------------------------------------

_DETECTORS: dict[tuple[str, str | None, str, str | None], Any] = {}


def get_detector(
    weights: str, cfg: str | None = None, device: str = "auto", sha256: str | None = None
) -> Any:
    """The detector for (weights, cfg, device, sha256), loaded on first use and kept; with
    ``sha256`` (the model row's) a file whose content changed is refused."""
    key = (str(weights), cfg, device, sha256)
    if key not in _DETECTORS:
        from spai.detector import Detector

        _DETECTORS[key] = Detector.load(weights, cfg=cfg, device=device, expect_sha256=sha256)
    return _DETECTORS[key]


# --- handlers ---------------------------------------------------------------------------------

DERIVE_BATCH = 16  # derived files recorded per transaction


def _ensure_condition_row(session, condition_id: str) -> None:
    from robustness.registry import get

    cond = get(condition_id)
    get_or_create_condition(session, condition_id, family=cond.family, params=cond.params,
                            description=cond.description)


def derive_todo(
    ctx: JobContext, imageset_id: int, condition_id: str
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """What ``derive_row`` needs for each image of the set without a derived file under the
    condition, and the job's counts (zero so far, and the set's size); logs and reports
    progress."""
    with session_scope(ctx.url) as s:
        _ensure_condition_row(s, condition_id)
        iset = s.get(ImageSet, imageset_id)
        if iset is None:
            raise KeyError(f"no image set with id {imageset_id}")
        have = derived_paths(s, imageset_id, condition_id)
        images = list(s.scalars(select(Image).where(Image.imageset_id == imageset_id)
                                .order_by(Image.id)))
    todo = [im for im in images if im.id not in have]
    ctx.log(f"deriving {len(todo)} of {len(images)} images of {iset.name!r} under "
            f"{condition_id!r}")
    ctx.progress(len(images) - len(todo), len(images))
    items = []
    for im in todo:
        src, error = image_file(iset, im)
        try:
            stem = str(derived_stem(iset.id, iset.name, condition_id, im.relpath))
        except ValueError as exc:
            src, error, stem = None, str(exc), ""
        items.append({
            "image_id": im.id, "src": str(src) if src else None,
            "error": error,  # used only when src is None
            "stem": stem,
            "key": f"sha256:{im.sha256}" if im.sha256 else f"{iset.name}/{im.relpath}",
        })
    return items, {"derived": 0, "derive_errors": 0, "images": len(images)}


def derive_row(item: dict[str, Any], condition_id: str) -> dict[str, Any]:
    """Write one derived file (an item of ``derive_todo``) and return its row (no created_at);
    a failure becomes the row's error."""
    from robustness.apply import derive_file

    row = {"image_id": item["image_id"], "condition_id": condition_id, "params": {},
           "seed": None, "width": None, "height": None}  # same keys in every row
    if item["src"] is None:
        return row | {"path": "", "has_file": False, "error": item["error"]}
    try:
        d = derive_file(item["src"], condition_id, item["stem"], item["key"])
    except Exception as exc:  # one bad image must not stop the set
        return row | {"path": "", "has_file": False,
                      "error": f"cannot derive: {type(exc).__name__}: {exc}"}
    return row | {"path": _stored(d.path), "params": d.params, "seed": d.seed,
                  "width": d.width, "height": d.height, "has_file": True, "error": None}


def write_derived(ctx: JobContext, rows: list[dict[str, Any]], counts: dict[str, int]) -> None:
    """Record a batch of derived rows (existing ones kept), count them and report progress."""
    now = utcnow()
    with ctx.owned_session() as s:
        insert_ignore(s, DerivedImage.__table__, [r | {"created_at": now} for r in rows])
    failed = sum(r["error"] is not None for r in rows)
    counts["derive_errors"] += failed
    counts["derived"] += len(rows) - failed
    ctx.progress(ctx.done + len(rows))


def derive_missing(ctx: JobContext, imageset_id: int, condition_id: str) -> dict[str, int]:
    """Write the derived file of every image of the set that lacks one under the condition."""
    todo, counts = derive_todo(ctx, imageset_id, condition_id)
    for start in range(0, len(todo), DERIVE_BATCH):
        ctx.check()
        write_derived(ctx, [derive_row(it, condition_id)
                            for it in todo[start:start + DERIVE_BATCH]], counts)
    return counts


def derive_on_executor(ctx: JobContext, imageset_id: int, condition_id: str) -> dict[str, int]:
    """``derive_missing`` on the job's executor (local, or Ray tasks)."""
    if executor_of(ctx.params) == "ray":
        from dashboard.ray_executor import derive_missing_ray

        return derive_missing_ray(ctx, imageset_id, condition_id)
    return derive_missing(ctx, imageset_id, condition_id)


def run_make_condition(ctx: JobContext) -> dict[str, Any]:
    p = ctx.params
    return derive_on_executor(ctx, int(p["imageset_id"]), str(p["condition_id"]))


def executor_of(params: dict[str, Any]) -> str:
    """The job's executor: its ``executor`` param, else ``SPAI_EXECUTOR``, else ``local``."""
    name = str(params.get("executor") or os.environ.get("SPAI_EXECUTOR") or "local")
    if name not in EXECUTORS:
        raise ValueError(f"unknown executor {name!r}; valid: {', '.join(EXECUTORS)}")
    return name


def error_rows(
    r: InferRun, todo: list[tuple[int, Path | None, str | None]]
) -> list[dict[str, Any]]:
    """Prediction rows (no score, the reason) for the items of ``infer_todo`` with an error."""
    return [{"run_id": r.run_id, "image_id": iid, "score": None, "error": err}
            for iid, _, err in todo if err is not None]


def _prediction_row(run_id: int, image_id: int, pred: Any) -> dict[str, Any]:
    return {"run_id": run_id, "image_id": image_id, "score": pred.score, "logit": pred.logit,
            "attention": pred.attention_mean or None, "error": pred.error,
            "seconds": pred.seconds}


@dataclass(frozen=True)
class InferRun:
    """An infer job's run row and what scoring it needs (shared by both executors)."""

    run_id: int
    imageset: ImageSet
    condition_id: str
    model_name: str
    weights: str
    sha256: str | None  # the registered file's hash: a changed file is refused
    cfg: str | None
    device: str
    batch: int


def open_infer_run(ctx: JobContext) -> InferRun:
    """Create (or find) the job's run, mark it running, and derive missing condition files."""
    p = ctx.params
    imageset_id, condition_id = int(p["imageset_id"]), str(p.get("condition_id") or ORIGINAL)
    batch = int(p.get("batch_size") or 16)
    with session_scope(ctx.url) as s:
        model = s.get(Model, int(p["model_id"]))
        iset = s.get(ImageSet, imageset_id)
        if model is None or iset is None:
            raise KeyError(f"model {p['model_id']} or image set {imageset_id} does not exist")
        if model.path is None:
            raise ValueError(f"model {model.name!r} has no weights file")
        if condition_id == ORIGINAL:
            get_or_create_condition(s, ORIGINAL, family="identity")
        else:
            _ensure_condition_row(s, condition_id)
        run = get_or_create_run(s, model.id, iset.id, condition_id, owner=ctx.owner,
                                settings={"batch_size": batch, "job_id": ctx.job_id})
        s.execute(update(Run).where(Run.id == run.id).values(
            status="running", started_at=func.coalesce(Run.started_at, utcnow())))
        r = InferRun(run.id, iset, condition_id, model.name, model.path, model.sha256,
                     (model.config or {}).get("cfg_path"), str(p.get("device") or "auto"), batch)
    if condition_id != ORIGINAL:
        derive_on_executor(ctx, imageset_id, condition_id)
    return r


def infer_todo(
    ctx: JobContext, r: InferRun
) -> list[tuple[int, Path | None, str | None]]:
    """The run's images without a prediction as (image id, file, error); logs and reports
    progress."""
    with session_scope(ctx.url) as s:
        total = s.scalar(select(func.count()).where(Image.imageset_id == r.imageset.id)) or 0
        todo = images_without_prediction(s, r.run_id, r.imageset.id)
        derived = (derived_paths(s, r.imageset.id, r.condition_id)
                   if r.condition_id != ORIGINAL else {})
        done = count_predictions(s, r.run_id)
    ctx.log(f"run {r.run_id}: {len(todo)} images to score ({done} already done) with "
            f"{r.model_name!r} under {r.condition_id!r}")
    ctx.progress(done, total)
    return [(im.id, *_source_of(r.imageset, im, r.condition_id, derived)) for im in todo]


def write_predictions(ctx: JobContext, r: InferRun, rows: list[dict[str, Any]]) -> int:
    """Insert a batch of prediction rows (existing ones kept) and report progress."""
    with ctx.owned_session() as s:
        bulk_insert_predictions(s, rows)
        done = count_predictions(s, r.run_id)
    ctx.progress(done)
    return done


def close_infer_run(ctx: JobContext, r: InferRun) -> dict[str, Any]:
    """Mark the run done (unless the job must stop) and return the job result."""
    ctx.check()
    with session_scope(ctx.url) as s:
        s.execute(update(Run).where(Run.id == r.run_id).values(status="done",
                                                               finished_at=utcnow()))
        done = count_predictions(s, r.run_id)
    return {"run_id": r.run_id, "predictions": done, "images": ctx.total}


def run_infer(ctx: JobContext) -> dict[str, Any]:
    """Score an image set under a condition with a model; resumable and cancellable."""
    if executor_of(ctx.params) == "ray":
        from dashboard.ray_executor import run_infer_ray

        return run_infer_ray(ctx)
    r = open_infer_run(ctx)
    todo = infer_todo(ctx, r)
    det = get_detector(r.weights, r.cfg, r.device, r.sha256) if todo else None
    for start in range(0, len(todo), r.batch):
        ctx.check()
        chunk = todo[start:start + r.batch]
        rows = error_rows(r, chunk)
        to_score = [(iid, path) for iid, path, err in chunk if err is None]
        # Stops early on cancel; zip below then keeps only the images actually scored.
        preds = det.score([str(path) for _, path in to_score], should_stop=ctx.should_stop)
        rows += [_prediction_row(r.run_id, iid, pr) for (iid, _), pr in zip(to_score, preds)]
        write_predictions(ctx, r, rows)
    return close_infer_run(ctx, r)


def _source_of(
    iset: ImageSet, im: Image, condition_id: str, derived: dict[int, DerivedImage]
) -> tuple[Path | None, str | None]:
    """The file to score for the image under the condition, or the reason there is none."""
    if condition_id == ORIGINAL:
        return image_file(iset, im)
    d = derived.get(im.id)
    if d is None:
        return None, f"no derived file under {condition_id!r}"
    if not d.has_file or d.error:
        return None, d.error or NO_FILE_ERROR
    return resolve_stored(d.path), None


def run_import(ctx: JobContext) -> dict[str, Any]:
    from db.importers import import_csv, import_study

    p = ctx.params
    if p.get("source") in ("register-folder", "register-csv"):
        return _run_register(ctx)
    with session_scope(ctx.url) as s:

        def checkpoint(report) -> None:
            """Commit each imported file (other writers wait at most one file); check cancel."""
            s.commit()
            ctx.progress(report.runs)
            ctx.check()

        if p.get("source") == "study":
            rep = import_study(s, p.get("folder"), checkpoint=checkpoint, owner=ctx.owner)
        elif p.get("source") == "csv":
            rep = import_csv(s, p["csv_path"], model_name=p["model_name"],
                             condition_id=p.get("condition_id") or ORIGINAL,
                             imageset=p.get("imageset"), root=p.get("root"),
                             score_column=p.get("score_column"), checkpoint=checkpoint,
                             owner=ctx.owner)
        else:
            raise ValueError(f"import job: source must be 'study', 'csv', 'register-folder' or "
                             f"'register-csv', got "
                             f"{p.get('source')!r}")
    for problem in rep.problems[:PROBLEMS_LOGGED]:
        ctx.log(problem)
    ctx.progress(rep.runs, rep.runs)  # counted in runs imported
    return {"runs": rep.runs, "images_added": rep.images_added,
            "predictions_added": rep.predictions_added, "problems": len(rep.problems),
            "skipped_files": len(rep.skipped)}


def _run_register(ctx: JobContext) -> dict[str, Any]:
    """Register image sets from a folder (labels from its subfolders when ``kind`` is None) or
    an official CSV, hashing and decoding each image."""
    from db.imagesets import register_csv, register_folder, register_labelled_folder

    p = ctx.params
    with session_scope(ctx.url) as s:
        handled = 0

        def checkpoint(n: int) -> None:
            """Commit the batch (other writers wait at most one batch) and check cancel."""
            nonlocal handled
            handled += n
            s.commit()
            ctx.progress(handled)
            ctx.check()

        if p["source"] == "register-folder" and p.get("kind") is None:
            rep = register_labelled_folder(s, p["folder"], name=p["name"], owner=ctx.owner,
                                           generator=p.get("generator"), checkpoint=checkpoint)
        elif p["source"] == "register-folder":
            rep = register_folder(s, p["folder"], name=p["name"], kind=p["kind"],
                                  generator=p.get("generator"), checkpoint=checkpoint,
                                  owner=ctx.owner)
        else:
            rep = register_csv(s, p["csv_path"], p["root"], name=p["name"],
                               generator=p.get("generator"), split=p.get("split"),
                               checkpoint=checkpoint, owner=ctx.owner)
    for problem in rep.problems[:PROBLEMS_LOGGED]:
        ctx.log(f"{problem.path}: {problem.reason}")
    seen = rep.added + rep.already_present
    ctx.progress(seen, seen + len(rep.problems))  # counted in files, problems included
    return {"imageset_ids": rep.imageset_ids, "added": rep.added,
            "already_present": rep.already_present,
            "problems": [{"row": q.row, "path": q.path, "problem": q.reason}
                         for q in rep.problems[:REGISTER_PROBLEMS_KEPT]]}


register_handler("infer", run_infer)
register_handler("make-condition", run_make_condition)
register_handler("import", run_import)


# --- the worker loop --------------------------------------------------------------------------


class Worker:
    """One worker process: registry row, heartbeat thread, claim-run loop."""

    def __init__(self, config: WorkerConfig = WorkerConfig(), url: str | None = None,
                 worker_id: str | None = None) -> None:
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
                    jobs.worker_heartbeat(s, self.id, ctx.job_id if ctx else None)
                    if ctx is not None:
                        flag = jobs.heartbeat(s, ctx.job_id, self.id)
                if ctx is not None:
                    ctx._apply_flag(flag)
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
                print(f"[worker {self.id}] process {pid} that started it is gone: stopping",
                      flush=True)
                self.stop_event.set()

    def run_one(self) -> int | None:
        """Claim and run one job; return its id, or None when nothing was claimable."""
        kinds = list(self.config.kinds or sorted(HANDLERS))
        cfg = self.config
        with session_scope(self.url) as s:
            jobs.reap_stale_cancelled(s, stale_after=cfg.stale_after)
            for job_id in jobs.fail_exhausted(s, kinds, stale_after=cfg.stale_after,
                                              max_attempts=cfg.max_attempts):
                print(f"[worker {self.id}] job {job_id} failed: attempt limit "
                      f"({cfg.max_attempts}) reached", file=sys.stderr)
            job = jobs.claim(s, self.id, kinds, stale_after=cfg.stale_after,
                             max_attempts=cfg.max_attempts)
            if job is None:
                return None
            ctx = JobContext(job.id, job.kind, dict(job.params or {}), self.id, self.url,
                             stop_event=self.stop_event, owner=job.owner,
                             lost_after=cfg.stale_after - cfg.heartbeat_seconds)
            resumed = job.attempts > 1
        self.ctx = ctx
        try:
            ctx.log(f"{'resumed' if resumed else 'started'} by worker {self.id}")
            result = get_handler(ctx.kind)(ctx)
            ctx.check()
            self._finish(ctx, "done", result=result or {})
        except JobCancelled:
            self._finish(ctx, "cancelled")
            self._mark_run(ctx, "cancelled")
        except JobLost as exc:
            print(f"[worker {self.id}] {exc}", file=sys.stderr)
        except WorkerStopping:
            with session_scope(self.url) as s:
                jobs.append_log(s, ctx.job_id, f"worker {self.id} stopped; job requeued")
                jobs.release(s, ctx.job_id, self.id)
        except Exception as exc:
            tb = traceback.format_exc()
            self._finish(ctx, "failed", traceback=tb, note=f"failed: {type(exc).__name__}: {exc}")
            self._mark_run(ctx, "failed")
        finally:
            self.ctx = None
        return ctx.job_id

    def _finish(self, ctx: JobContext, status: str, *, result: dict | None = None,
                traceback: str | None = None, note: str | None = None) -> None:
        with session_scope(self.url) as s:
            jobs.append_log(s, ctx.job_id, note or status)
            jobs.finish(s, ctx.job_id, self.id, status, result=result, traceback=traceback)

    def _mark_run(self, ctx: JobContext, status: str) -> None:
        if ctx.kind != "infer":
            return
        p = ctx.params
        with session_scope(self.url) as s:
            s.execute(update(Run).where(
                Run.model_id == p.get("model_id"), Run.imageset_id == p.get("imageset_id"),
                Run.condition_id == (p.get("condition_id") or ORIGINAL),
            ).values(status=status))

    def serve(self) -> int:
        """Run jobs until stopped (or, with ``once``, until nothing is claimable)."""
        init_db(self.url)
        with session_scope(self.url) as s:
            jobs.register_worker(s, self.id, socket.gethostname(), os.getpid())
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
                    delay = min(STORE_BACKOFF_MAX_S, self.config.poll_seconds * 2 ** errors)
                    errors += 1
                    print(f"[worker {self.id}] store error ({one_line(exc)}); retrying in "
                          f"{delay:g} s", file=sys.stderr, flush=True)
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
                jobs.worker_stopped(s, self.id)
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


def live_workers(session, *, stale_after: float = jobs.STALE_AFTER_S) -> list[Any]:
    """``jobs.alive_workers`` less those of this machine whose process is gone (a killed worker
    counts as dead at once, not only once its heartbeat is stale)."""
    host = socket.gethostname()
    return [w for w in jobs.alive_workers(session, stale_after=stale_after)
            if w.hostname != host or pid_alive(w.pid)]


def load_plugins(extra: str | None = None) -> None:
    """Import handler modules from ``PLUGIN_MODULES`` and ``SPAI_WORKER_PLUGINS``."""
    names = list(PLUGIN_MODULES) + [m.strip() for m in (extra or "").split(",") if m.strip()]
    for name in names:
        importlib.import_module(name)


def ensure_worker_running(
    url: str | None = None, *, stale_after: float = jobs.STALE_AFTER_S,
    log_path: str | Path | None = None, parent_pid: int | None = None,
    idle_exit: float | None = None,
) -> subprocess.Popen | None:
    """Start a detached ``python -m dashboard.worker`` unless a live worker heartbeats; it
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
    args = [sys.executable, "-m", "dashboard.worker"]
    args += ["--parent-pid", str(parent_pid)] if parent_pid is not None else []
    args += ["--idle-exit", str(idle_exit)] if idle_exit is not None else []
    with open(log, "ab") as out:
        return subprocess.Popen(
            args, cwd=str(REPO_ROOT), env=env,
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def check_config(config: WorkerConfig) -> None:
    """UserError for settings that cannot work: non-positive periods, a stale limit a live
    worker could hit between two heartbeats, job kinds nobody handles."""
    for name in ("poll_seconds", "heartbeat_seconds", "stale_after"):
        if not getattr(config, name) > 0:
            raise UserError(f"--{name.replace('_', '-')} must be positive, got "
                            f"{getattr(config, name)}")
    if config.stale_after < STALE_HEARTBEATS * config.heartbeat_seconds:
        raise UserError(f"--stale-after ({config.stale_after:g} s) must be at least "
                        f"{STALE_HEARTBEATS} x --heartbeat-seconds "
                        f"({STALE_HEARTBEATS * config.heartbeat_seconds:g} s), or live jobs "
                        f"would be taken over")
    for kind in config.kinds or ():
        if kind not in HANDLERS:
            raise UserError(f"unknown job kind {kind!r} in --kinds{closest(kind, HANDLERS)}")


def main(argv: list[str] | None = None) -> int:
    """``python -m dashboard.worker``: user errors print one line and exit with status 2."""
    return run_main(lambda: _main(argv), user_errors=(StoreUnavailable,))


def _main(argv: list[str] | None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dashboard.worker", description=__doc__.split(
        "\n")[0])
    ap.add_argument("--once", action="store_true",
                    help="exit when no job is claimable instead of polling")
    ap.add_argument("--poll-seconds", type=float, default=WorkerConfig.poll_seconds)
    ap.add_argument("--heartbeat-seconds", type=float, default=WorkerConfig.heartbeat_seconds)
    ap.add_argument("--stale-after", type=float, default=WorkerConfig.stale_after,
                    help="seconds without heartbeat after which a running job is taken over")
    ap.add_argument("--max-jobs", type=int, default=None)
    ap.add_argument("--kinds", default=None, help="comma-separated job kinds to serve")
    ap.add_argument("--database-url", default=None, help="overrides DATABASE_URL")
    ap.add_argument("--parent-pid", type=int, default=None,
                    help="exit when this process is gone (the dashboard passes its own pid)")
    ap.add_argument("--idle-exit", type=float, default=None,
                    help="exit after this many seconds without a job")
    ap.add_argument("--executor", choices=EXECUTORS, default=None,
                    help="executor of infer/make-condition jobs that name none (SPAI_EXECUTOR)")
    ap.add_argument("--ray-address", default=None,
                    help="Ray cluster for the 'ray' executor; 'auto' joins this node's cluster "
                         "(RAY_ADDRESS)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads for this process (default: torch's choice, one per "
                         "core); with several workers on one machine give each cores / workers")
    args = ap.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads must be at least 1, got {args.threads}")
    load_plugins(os.environ.get("SPAI_WORKER_PLUGINS"))
    config = WorkerConfig(
        poll_seconds=args.poll_seconds, heartbeat_seconds=args.heartbeat_seconds,
        stale_after=args.stale_after, once=args.once, max_jobs=args.max_jobs,
        kinds=tuple(k.strip() for k in args.kinds.split(",")) if args.kinds else None,
        parent_pid=args.parent_pid, idle_exit=args.idle_exit,
    )
    check_config(config)
    check_store(args.database_url)
    import torch  # every scoring and training handler needs it

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.executor:
        os.environ["SPAI_EXECUTOR"] = args.executor
    if args.ray_address:
        os.environ["RAY_ADDRESS"] = args.ray_address
    worker = Worker(config, url=args.database_url)

    def _stop(signum, _frame) -> None:
        worker.stop_event.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(f"[worker {worker.id}] serving {database_url(args.database_url)} with "
          f"{torch.get_num_threads()} torch thread(s)", flush=True)
    n = worker.serve()
    print(f"[worker {worker.id}] exiting after {n} job(s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
