"""Job control: "Retry" redoes a job's error rows (a file that was still being copied is scored
once it is whole; only the chosen kind of error is redone); registration and imports stop at the
batch after a cancel; a run refuses a weights file that changed since its model was
registered."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select

from dashboard import jobqueue
from jobs.worker import JobWorker, WorkerConfig
from db import jobs
from db.models import Image, Prediction
from db.owners import LOCAL
from db.session import session_scope
from tiny_model import TINY_CFG, TINY_IMAGES, TINY_WEIGHTS
from worker_support import image_set

NAMES = ["01_rgb_224x224.png", "04_rgb_97x130.png"]


def _run_queue(url: str) -> None:
    JobWorker(WorkerConfig(once=True, heartbeat_seconds=0.5), url=url).serve()


def _by_name(url: str) -> dict[str, tuple[float | None, str | None]]:
    with session_scope(url, readonly=True) as s:
        rows = s.execute(
            select(Image.relpath, Prediction.score, Prediction.error).join(Image, Image.id == Prediction.image_id)
        ).all()
    return {rel: (score, err) for rel, score, err in rows}


def test_retry_redoes_error_rows_of_the_chosen_kind(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPAI_DATA_DIR", str(tmp_path / "data"))
    folder = tmp_path / "set"
    set_id, model_id = image_set(sqlite_url, folder, NAMES, broken=True)  # zz_broken.png
    with session_scope(sqlite_url) as s:
        job_id = jobqueue.enqueue_infer(s, model_id=model_id, imageset_id=set_id, device="cpu")
    _run_queue(sqlite_url)
    assert _by_name(sqlite_url)["zz_broken.png"][0] is None
    with session_scope(sqlite_url) as s:
        assert jobs.get_job(s, job_id).status == "done"
        assert jobqueue.error_kinds(s, job_id) == {"unreadable image": 1}
        # Another kind redoes nothing; a done job without redo cannot be requeued.
        assert jobqueue.retry(s, job_id, actor=LOCAL, redo_errors=True, error_kind="disk full") == 0
    _run_queue(sqlite_url)
    assert _by_name(sqlite_url)["zz_broken.png"][0] is None
    with session_scope(sqlite_url) as s:
        with pytest.raises(ValueError, match="only failed or cancelled jobs"):
            jobqueue.retry(s, job_id, actor=LOCAL)
    shutil.copy(TINY_IMAGES / NAMES[0], folder / "zz_broken.png")  # the copy has completed now
    before = _by_name(sqlite_url)
    with session_scope(sqlite_url) as s:
        assert jobqueue.retry(s, job_id, actor=LOCAL, redo_errors=True, error_kind="unreadable image") == 1
    _run_queue(sqlite_url)
    after = _by_name(sqlite_url)
    assert after["zz_broken.png"][1] is None
    assert after["zz_broken.png"][0] == pytest.approx(after[f"c0_{NAMES[0]}"][0])
    assert {k: v for k, v in after.items() if k != "zz_broken.png"} == {
        k: v for k, v in before.items() if k != "zz_broken.png"
    }  # the others kept
    with session_scope(sqlite_url) as s:
        assert jobs.get_job(s, job_id).status == "done"
        assert jobqueue.error_kinds(s, job_id) == {}


def _cancel_once_done(ctx, url: str, at: int) -> list[int]:
    """Make a person cancel ``ctx``'s job once its progress reaches ``at``; returns the list of
    progress values the job reports (filled as it runs)."""
    calls: list[int] = []
    original = ctx.progress

    def progress(done: int, total: int | None = None) -> None:
        calls.append(done)
        if done >= at:
            with session_scope(url) as s:
                jobqueue.cancel(s, ctx.job_id, actor=LOCAL)
        original(done, total)

    ctx.progress = progress
    return calls


def test_registration_checks_cancellation_between_batches(sqlite_url: str, tmp_path: Path) -> None:
    from jobs.context import JobCancelled, JobContext
    from jobs.imports import run_import
    from jobs.params import ImportParams

    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(130):  # three batches of REGISTER_BATCH (64)
        shutil.copy(TINY_IMAGES / NAMES[1], folder / f"{i:03d}.png")
    with session_scope(sqlite_url) as s:
        jobqueue.enqueue_register_folder(s, str(folder), name="many", kind="real", actor=LOCAL)
        job = jobs.claim(s, "w", ["import"])
    ctx = JobContext(job.id, job.kind, ImportParams.from_dict(job.params), "w", sqlite_url)
    calls = _cancel_once_done(ctx, sqlite_url, 64)  # once the first batch is in
    with pytest.raises(JobCancelled):
        run_import(ctx)
    with session_scope(sqlite_url, readonly=True) as s:
        registered = s.scalar(select(func.count()).select_from(Image))
    assert calls == [0, 64] and registered == 64  # the first batch committed, no more read


def test_study_import_commits_per_file_and_checks_cancellation(sqlite_url: str) -> None:
    from jobs.context import JobCancelled, JobContext
    from jobs.imports import run_import
    from jobs.params import ImportParams
    from db.models import Run

    with session_scope(sqlite_url) as s:
        jobqueue.enqueue_import_study(s)
        job = jobs.claim(s, "w", ["import"])
    ctx = JobContext(job.id, job.kind, ImportParams.from_dict(job.params), "w", sqlite_url)
    _cancel_once_done(ctx, sqlite_url, 2)  # once two files are in
    with pytest.raises(JobCancelled):
        run_import(ctx)
    with session_scope(sqlite_url, readonly=True) as s:
        assert s.scalar(select(func.count()).select_from(Run)) == 2  # committed, then stopped
        assert s.scalar(select(func.count()).select_from(Prediction)) > 0


def test_infer_job_refuses_weights_changed_since_registration(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPAI_DATA_DIR", str(tmp_path / "data"))
    weights = tmp_path / "model.pth"
    shutil.copy(TINY_WEIGHTS, weights)
    set_id, _ = image_set(sqlite_url, tmp_path / "set", NAMES)
    with session_scope(sqlite_url) as s:
        model_id = jobqueue.register_model(s, weights, name="mine", cfg=TINY_CFG, origin="trained")
        job_id = jobqueue.enqueue_infer(s, model_id=model_id, imageset_id=set_id, device="cpu")
    weights.write_bytes(TINY_WEIGHTS.read_bytes() + b"\0")  # replaced after registration
    _run_queue(sqlite_url)
    with session_scope(sqlite_url) as s:
        view = jobs.get_job(s, job_id)
        assert view.status == "failed" and "changed since the model was registered" in (view.traceback or "")
        assert s.scalar(select(func.count()).select_from(Prediction)) == 0
