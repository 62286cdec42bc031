"""The background worker with the real tiny SPAI model: scoring, conditions, cancel, kill -9."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from dashboard import jobqueue
from jobs.worker import JobWorker, WorkerConfig, ensure_worker_running
from db import jobs
from db.models import DerivedImage, Image, Prediction, Run, Worker as WorkerRow
from db.owners import LOCAL
from db.session import REPO_ROOT, session_scope
from tiny_model import TINY_DIR
from worker_support import cancel_when_started, image_set as _image_set, wait_for

SMALL = ["01_rgb_224x224.png", "02_rgb_500x300.png", "04_rgb_97x130.png", "05_gray_320x256.png"]
WAIT_LIMIT_S = 240  # a hang guard, not a performance assertion


def _wait(url: str, job_id: int, pred: Callable[[jobs.JobView], bool]) -> jobs.JobView:
    return wait_for(url, job_id, pred, WAIT_LIMIT_S)


def _spawn_worker(*extra: str) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen(
        [sys.executable, "-m", "jobs.worker", "--poll-seconds", "0.2", "--heartbeat-seconds", "0.5", *extra],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _per_image_counts(url: str, run_id: int) -> dict[int, int]:
    with session_scope(url, readonly=True) as s:
        return dict(
            s.execute(
                select(Prediction.image_id, func.count())
                .where(Prediction.run_id == run_id)
                .group_by(Prediction.image_id)
            ).all()
        )


def test_infer_job_scores_like_the_reference_and_records_bad_images(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPAI_DATA_DIR", str(tmp_path / "data"))
    set_id, model_id = _image_set(sqlite_url, tmp_path / "set", SMALL, broken=True)
    with session_scope(sqlite_url) as s:
        job_id = jobqueue.enqueue_infer(s, model_id=model_id, imageset_id=set_id, batch_size=2, device="cpu")
    assert JobWorker(WorkerConfig(once=True, heartbeat_seconds=0.5), url=sqlite_url).serve() == 1
    with session_scope(sqlite_url) as s:
        view = jobs.get_job(s, job_id)
        assert view.status == "done", view.traceback
        assert (view.progress_done, view.progress_total) == (5, 5)
        rows = s.execute(
            select(Image.relpath, Prediction.score, Prediction.logit, Prediction.error, Prediction.attention).join(
                Image, Image.id == Prediction.image_id
            )
        ).all()
        assert s.scalars(select(Run.status)).one() == "done"
    with open(TINY_DIR / "expected_scores.csv", newline="") as f:
        expected = {r["image"]: float(r["score"]) for r in csv.DictReader(f)}
    by_name = {rel: (score, logit, err, att) for rel, score, logit, err, att in rows}
    assert len(by_name) == 5
    score, _, err, _ = by_name["zz_broken.png"]
    assert score is None and "unreadable image" in err
    for name in SMALL:
        score, logit, err, att = by_name[f"c0_{name}"]
        assert err is None and logit is not None and len(att) >= 1
        assert score == pytest.approx(expected[name], abs=1e-4)


def test_infer_under_a_condition_derives_files_first(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPAI_DATA_DIR", str(tmp_path / "data"))
    set_id, model_id = _image_set(sqlite_url, tmp_path / "cset", SMALL[:2])
    with session_scope(sqlite_url) as s:
        job_id = jobqueue.enqueue_infer(s, model_id=model_id, imageset_id=set_id, condition_id="jpeg/q75", device="cpu")
    JobWorker(WorkerConfig(once=True, heartbeat_seconds=0.5), url=sqlite_url).serve()
    with session_scope(sqlite_url) as s:
        assert jobs.get_job(s, job_id).status == "done"
        derived = s.scalars(select(DerivedImage)).all()
        preds = s.scalars(select(Prediction)).all()
    assert len(derived) == 2 and len(preds) == 2
    for d in derived:
        path = REPO_ROOT / d.path if not Path(d.path).is_absolute() else Path(d.path)
        assert path.is_file() and path.suffix == ".jpg"
        assert path.parent == tmp_path / "data" / "derived" / f"{set_id}-cset" / "jpeg__q75"
        assert d.seed is not None and d.params["quality"] == 75
    assert all(p.error is None and p.score is not None for p in preds)


def test_failed_job_records_its_traceback(sqlite_url: str) -> None:
    with session_scope(sqlite_url) as s:
        job_id = jobs.enqueue(s, "infer", {"model_id": 999, "imageset_id": 999})
        bad_kind = jobs.enqueue(s, "make-condition", {"imageset_id": 1, "condition_id": "x"})
    JobWorker(WorkerConfig(once=True), url=sqlite_url).serve()
    with session_scope(sqlite_url) as s:
        view, other = jobs.get_job(s, job_id), jobs.get_job(s, bad_kind)
    assert view.status == "failed" and "KeyError" in view.traceback
    assert "failed: KeyError" in view.log_tail
    assert other.status == "failed"


def test_cancel_running_infer_job(db_url: str, tmp_path: Path) -> None:
    set_id, model_id = _image_set(db_url, tmp_path / "many", SMALL, copies=6)
    with session_scope(db_url) as s:
        job_id = jobqueue.enqueue_infer(s, model_id=model_id, imageset_id=set_id, batch_size=2, device="cpu")
    view = cancel_when_started(db_url, job_id, _spawn_worker(), _wait, stop_timeout_s=60)
    assert view.status == "cancelled"
    with session_scope(db_url) as s:
        run = s.scalars(select(Run)).one()
        n = s.scalar(select(func.count()).select_from(Prediction))
    assert run.status == "cancelled" and 2 <= n < 24


def test_kill_9_mid_inference_then_restart_gives_one_prediction_per_image(db_url: str, tmp_path: Path) -> None:
    set_id, model_id = _image_set(db_url, tmp_path / "crash", SMALL, copies=5)
    with session_scope(db_url) as s:
        job_id = jobqueue.enqueue_infer(s, model_id=model_id, imageset_id=set_id, batch_size=2, device="cpu")
    first = _spawn_worker()
    try:
        _wait(db_url, job_id, lambda v: v.progress_done >= 4)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    with session_scope(db_url) as s:
        assert jobs.get_job(s, job_id).status == "running"  # orphaned, heartbeat goes stale
        run_id = s.scalars(select(Run.id)).one()
    done_before = sum(_per_image_counts(db_url, run_id).values())
    assert 4 <= done_before < 20
    second = _spawn_worker("--stale-after", "2")  # polls until the orphan's heartbeat is stale
    try:
        view = _wait(db_url, job_id, lambda v: v.status in ("done", "failed"))
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=120)
    assert view.status == "done" and view.attempts == 2, view.traceback
    assert "resumed by worker" in view.log_tail
    counts = _per_image_counts(db_url, run_id)
    assert len(counts) == 20 and set(counts.values()) == {1}


def test_ensure_worker_running_starts_one_detached_worker(sqlite_url: str, tmp_path: Path) -> None:
    proc = ensure_worker_running(sqlite_url, log_path=tmp_path / "worker.log")
    assert proc is not None
    try:
        deadline = time.monotonic() + WAIT_LIMIT_S
        while time.monotonic() < deadline:
            with session_scope(sqlite_url, readonly=True) as s:
                if jobs.alive_workers(s):
                    break
            time.sleep(0.2)
        assert ensure_worker_running(sqlite_url, log_path=tmp_path / "worker.log") is None
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    with session_scope(sqlite_url, readonly=True) as s:
        row = s.scalars(select(WorkerRow)).one()
        assert row.pid == proc.pid and row.stopped_at is not None
        assert not jobs.alive_workers(s)


def test_worker_module_does_not_import_streamlit() -> None:
    code = (
        "import sys, dashboard, jobs.worker, dashboard.worker, dashboard.jobqueue; sys.exit('streamlit' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT).returncode == 0


def test_import_job_runs_in_the_worker(sqlite_url: str, tmp_path: Path) -> None:
    out = tmp_path / "fake_mine.csv"
    out.write_text("image,class,split,spai\nx/1.png,1,test,0.75\nx/2.png,1,test,0.25\n")
    with session_scope(sqlite_url) as s:
        job_id = jobqueue.enqueue_import_csv(s, str(out), model_name="imported model", actor=LOCAL)
        bad = jobs.enqueue(s, "import", {"source": "nowhere"})
    JobWorker(WorkerConfig(once=True), url=sqlite_url).serve()
    with session_scope(sqlite_url) as s:
        view, failed = jobqueue.status(s, job_id), jobqueue.status(s, bad)
        assert s.scalar(select(func.count()).select_from(Prediction)) == 2
    assert view.status == "done" and view.result["predictions_added"] == 2
    assert failed.status == "failed" and "source must be 'study', 'csv', 'register-folder'" in failed.traceback
