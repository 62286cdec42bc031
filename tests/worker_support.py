"""Shared by the worker and Ray executor tests: a registered image set of fixture images, a
bounded wait on a job's state (a hang guard, not a performance assertion) and a cancel of a
job a worker process is running."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from dashboard import jobqueue
from db import jobs
from db.imagesets import register_folder
from db.owners import LOCAL
from db.session import session_scope
from tiny_model import TINY_CFG, TINY_IMAGES, TINY_WEIGHTS


def image_set(url: str, folder: Path, names: list[str], copies: int = 1, broken: bool = False) -> tuple[int, int]:
    """Register copies of the fixture images (and a broken file) as a set; register the tiny
    model. Returns (image set id, model id)."""
    folder.mkdir(parents=True, exist_ok=True)
    for c in range(copies):
        for n in names:
            shutil.copy(TINY_IMAGES / n, folder / f"c{c}_{n}")
    if broken:
        (folder / "zz_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated garbage")
    with session_scope(url) as s:
        rep = register_folder(s, folder, name=folder.name, kind="fake")
        model_id = jobqueue.register_model(s, TINY_WEIGHTS, name="tiny", cfg=TINY_CFG, origin="demo")
    return rep.imageset_ids[folder.name], model_id


def wait_for(url: str, job_id: int, pred: Callable[[jobs.JobView], bool], limit_s: float) -> jobs.JobView:
    """Poll the job until pred(view) holds; fail after limit_s."""
    deadline = time.monotonic() + limit_s
    view = None
    while time.monotonic() < deadline:
        with session_scope(url, readonly=True) as s:
            view = jobs.get_job(s, job_id)
        if pred(view):
            return view
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} never reached the expected state: {view}")


def cancel_when_started(
    url: str, job_id: int, proc: subprocess.Popen, wait: Callable[..., jobs.JobView], stop_timeout_s: float
) -> jobs.JobView:
    """Once the job has 2 images done, request its cancel (it must be running) and wait until it
    leaves "running"; then SIGTERM the worker process, which must exit cleanly. Returns the job."""
    try:
        wait(url, job_id, lambda v: v.progress_done >= 2)
        with session_scope(url) as s:
            assert jobqueue.cancel(s, job_id, actor=LOCAL) == "running"
        view = wait(url, job_id, lambda v: v.status != "running")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=stop_timeout_s) == 0
    return view
