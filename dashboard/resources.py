"""The app's cached singletons: the detector (one per weights file and process), file hashes,
the decoded uploads of a session (one per upload and page) and the background worker start.
Nothing else in the dashboard caches resources.

Which model is active is decided by ``spai.weights.active_model``: the one chosen on the Models
page (saved in the store, so it holds for every user and survives restarts) while its file
exists, else ``SPAI_MODEL_WEIGHTS`` (with optional ``SPAI_MODEL_CFG``) from the environment,
else the official weights if present, else the demo model.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import streamlit as st

from dashboard import state
from spai.weights import ActiveModel
from spai.weights import active_model as choose_model

if TYPE_CHECKING:  # torch is imported when the model is loaded, after the page's first paint
    from db.owners import Actor
    from spai.detector import Detector, ImageResult, PreparedImage

ENV_START_WORKER = "SPAI_START_WORKER"  # "0": the app does not start a background worker
WORKER_IDLE_EXIT_S = 1800.0  # the app's worker exits after this long without a job
NO_MODEL_MESSAGE = (
    "No model file found. Put the official weights at weights/spai.pth (see weights/README.md) "
    "or build the demo model with `python -m spai.demo reproduce`."
)


def saved_default_model() -> str | None:
    """Weights path saved as the default on the Models page, or None (also when the store
    cannot be read: scoring does not need it)."""
    from sqlalchemy.exc import SQLAlchemyError

    from db.session import session_scope
    from db.settings import DEFAULT_MODEL, get_setting

    try:
        with session_scope(readonly=True) as s:
            return get_setting(s, DEFAULT_MODEL)
    except (SQLAlchemyError, OSError):  # no database, or no folder to create its file in
        return None


def save_default_model(path: str | None, *, actor: Actor) -> None:
    """Save `path` as the default model for every user of the store (None: back to the
    environment's or the built-in choice). Administrators only (``db.owners.NotAllowed``)."""
    from db.owners import require_admin
    from db.session import session_scope
    from db.settings import DEFAULT_MODEL, set_setting

    require_admin(actor, "change the default model")
    with session_scope() as s:
        set_setting(s, DEFAULT_MODEL, path)


def active_model() -> ActiveModel:
    """The weights the pages score with (see the module docstring for the order)."""
    return choose_model(saved=saved_default_model(), environ=os.environ)


@st.cache_resource(max_entries=2, show_spinner="Loading the model ...")
def get_detector(weights: str, cfg: str | None = None, device: str = "auto") -> Detector:
    """Load a detector once per (weights, cfg, device) and share it across sessions.

    The Detector serialises its own forward passes with a lock, so sharing is safe. torch is
    imported here, under the "Loading the model" spinner, not when the page starts.
    """
    from spai.detector import Detector

    return Detector.load(weights, cfg=cfg, device=device)


@st.cache_resource(show_spinner=False)
def _preload() -> threading.Thread:
    thread = threading.Thread(target=importlib.import_module, args=("spai.detector",), name="spai-preload", daemon=True)
    thread.start()
    return thread


def preload_in_background() -> None:
    """Import torch and the model code in a background thread, once per server, after the
    first page is drawn: the first paint never waits for them, and the Score page's first
    model load usually finds them imported."""
    _preload()


def load_active_detector() -> tuple[Detector | None, str | None]:
    """(the active model's detector, None) or (None, why it cannot be used)."""
    choice = active_model()
    if not choice.exists:
        return None, NO_MODEL_MESSAGE
    try:
        return get_detector(choice.weights, choice.cfg), None
    except Exception as exc:  # wrong config, corrupt file: say so on the page
        return None, f"Cannot load the model {choice.weights}: {type(exc).__name__}: {exc}"


def score_prepared(det: Detector, prepared: PreparedImage, sha: str, name: str) -> ImageResult:
    """The model's prediction for a decoded upload, made once per session, model and image
    (the Score and Inspect pages share it)."""
    pred = state.cached_prediction(det.info.sha256, sha)
    if pred is None:
        with st.spinner(f"Scoring {name} ..."):
            pred = det.score_one(prepared, name)  # decoded from the uploaded bytes as they are
        state.store_prediction(det.info.sha256, sha, pred)
    return pred


def prepared_uploads(det: Detector, page: str, uploads: dict[str, bytes]) -> dict[str, PreparedImage | str]:
    """Each upload (image sha256 -> bytes) decoded once per session and page: its decoded image
    and model input, or why it cannot be scored. Reruns reuse them; uploads no longer on the
    page are dropped, so the session holds only what the page shows."""
    held = state.prepared_inputs(page)
    key = (det.max_pixels, det.model.img_size, det.resize_to)  # what the model input depends on
    kept = {}
    for sha, data in uploads.items():
        got = held.get((key, sha))
        kept[(key, sha)] = got if got is not None else det.try_prepare(data)
    state.keep_prepared_inputs(page, kept)
    return {sha: kept[(key, sha)] for sha in uploads}


@dataclass
class _WorkerSlot:
    """The worker process this server started (one per server process)."""

    proc: subprocess.Popen | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True)
class WorkerStatus:
    """Live workers of the store, as the sidebar shows them."""

    enabled: bool  # False: SPAI_START_WORKER=0, the app starts none
    alive: tuple[tuple[str, str | None], ...]  # (worker id, "job #N: what it does" or None)
    queued: int  # jobs waiting for a worker
    exit_code: int | None = None  # of the worker this server started, when it has exited
    starting: bool = False  # this server's worker runs but has not registered yet


@st.cache_resource
def _worker_slot() -> _WorkerSlot:
    return _WorkerSlot()


def start_worker_once() -> str | None:
    """Start ``python -m jobs.worker`` unless this server's worker is running or another
    live worker heartbeats. It exits with this server (it watches the server's pid) or after
    ``WORKER_IDLE_EXIT_S`` without a job; the next call starts a new one.

    Returns None when running (or disabled by ``SPAI_START_WORKER=0``), else why it could not
    start.
    """
    if os.environ.get(ENV_START_WORKER, "1") == "0":
        return None
    from jobs.worker import ensure_worker_running

    slot = _worker_slot()
    with slot.lock:
        if slot.proc is not None and slot.proc.poll() is None:
            return None
        try:
            started = ensure_worker_running(parent_pid=os.getpid(), idle_exit=WORKER_IDLE_EXIT_S)
        except Exception as exc:  # e.g. the database is unreachable: say so, keep the pages up
            return f"Background worker not started: {type(exc).__name__}: {exc}"
        slot.proc = started or slot.proc
    return None


def worker_status() -> WorkerStatus:
    """Live workers (a worker of this machine whose process is gone counts as dead at once,
    not after its heartbeat goes stale) and the number of queued jobs."""
    from dashboard import jobqueue
    from jobs.worker import live_workers
    from db.session import session_scope

    with session_scope(readonly=True) as s:
        rows = live_workers(s)
        running = jobqueue.recent(s, statuses=["running"])
        names = jobqueue.describe(s, running)
        queued = len(jobqueue.recent(s, statuses=["queued"]))
    alive = tuple(
        (w.id, f"job #{w.current_job_id}: {names[w.current_job_id]}" if w.current_job_id in names else None)
        for w in rows
    )
    proc = _worker_slot().proc
    code = proc.poll() if proc is not None else None
    starting = proc is not None and code is None and proc.pid not in {w.pid for w in rows}
    return WorkerStatus(os.environ.get(ENV_START_WORKER, "1") != "0", alive, queued, code, starting)
