"""The ``ray`` executor against a local Ray (started once for this module) and the real tiny
model: same predictions and derived files as the local executor, cancel, kill -9 and resume."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from db import jobs
from db.models import DerivedImage, Image, Prediction, Run
from db.session import REPO_ROOT, dispose_all, session_scope
from jobs.executors.ray import (
    ActorPlan,
    check_reachable,
    plan_actors,
    ray_address,
    runtime_env,
)
from jobs.worker import JobWorker, WorkerConfig
from tiny_model import TINY_CFG, TINY_IMAGES, TINY_WEIGHTS
from worker_support import cancel_when_started, image_set as _image_set, wait_for

SMALL = ["01_rgb_224x224.png", "02_rgb_500x300.png", "04_rgb_97x130.png", "05_gray_320x256.png"]
HEARTBEAT_S = 0.5
WAIT_LIMIT_S = 300  # a hang guard, not a performance assertion


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[str]:
    """One local Ray for the module (about 6 s to start); yields its address."""
    import ray

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_AUTH_MODE", "disabled")
        ray.init(num_cpus=2, include_dashboard=False, runtime_env=runtime_env(), log_to_driver=False)
        try:
            yield ray.get_runtime_context().gcs_address
        finally:
            ray.shutdown()


def _wait(url: str, job_id: int, pred: Callable[[jobs.JobView], bool]) -> jobs.JobView:
    return wait_for(url, job_id, pred, WAIT_LIMIT_S)


def _per_image_counts(url: str) -> dict[int, int]:
    with session_scope(url, readonly=True) as s:
        return dict(s.execute(select(Prediction.image_id, func.count()).group_by(Prediction.image_id)).all())


def _serve_once(url: str) -> None:
    JobWorker(WorkerConfig(once=True, heartbeat_seconds=HEARTBEAT_S), url=url).serve()


def _infer(url: str, model_id: int, set_id: int, **extra: object) -> int:
    with session_scope(url) as s:
        return jobs.enqueue(
            s, "infer", {"model_id": model_id, "imageset_id": set_id, "batch_size": 2, "device": "cpu", **extra}
        )


def _rows_by_relpath(url: str, set_id: int) -> dict[str, tuple]:
    with session_scope(url, readonly=True) as s:
        rows = s.execute(
            select(Image.relpath, Prediction.score, Prediction.logit, Prediction.error, Prediction.attention)
            .join(Image, Image.id == Prediction.image_id)
            .where(Image.imageset_id == set_id)
        ).all()
    assert len(rows) == len({r[0] for r in rows}), "more than one prediction for an image"
    return {r[0]: tuple(r[1:]) for r in rows}


def _spawn_ray_worker(address: str, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", RAY_AUTH_MODE="disabled")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jobs.worker",
            "--executor",
            "ray",
            "--ray-address",
            address,
            "--poll-seconds",
            "0.2",
            "--heartbeat-seconds",
            str(HEARTBEAT_S),
            *extra,
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_ray_predictions_equal_local_ones(
    ray_cluster: str, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPAI_DATA_DIR", str(tmp_path / "data"))
    local_set, model_id = _image_set(sqlite_url, tmp_path / "loc", SMALL, broken=True)
    ray_set, _ = _image_set(sqlite_url, tmp_path / "ray", SMALL, broken=True)
    local_job = _infer(sqlite_url, model_id, local_set)
    ray_job = _infer(sqlite_url, model_id, ray_set, executor="ray")
    _serve_once(sqlite_url)
    with session_scope(sqlite_url, readonly=True) as s:
        views = [jobs.get_job(s, j) for j in (local_job, ray_job)]
        assert set(s.scalars(select(Run.status))) == {"done"}
    for v in views:
        assert v.status == "done", v.traceback
        assert (v.progress_done, v.progress_total) == (5, 5)
        assert v.result["predictions"] == 5
    assert "CPU actor(s)" in views[1].log_tail
    local, ray_rows = _rows_by_relpath(sqlite_url, local_set), _rows_by_relpath(sqlite_url, ray_set)
    assert local.keys() == ray_rows.keys() and len(local) == 5
    for rel, (score, logit, err, att) in local.items():
        r_score, r_logit, r_err, r_att = ray_rows[rel]
        assert r_err == err
        if err is not None:
            assert rel == "zz_broken.png" and score is None and r_score is None
            continue
        assert r_score == pytest.approx(score, abs=1e-6)
        assert r_logit == pytest.approx(logit, abs=1e-5)
        assert r_att == pytest.approx(att, abs=1e-6)


def test_ray_condition_derivation_equals_local(
    ray_cluster: str, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPAI_DATA_DIR", str(tmp_path / "data"))
    sets = {}
    for name in ("dloc", "dray"):
        sets[name], model_id = _image_set(sqlite_url, tmp_path / name, SMALL, broken=True)
        # registered as readable, broken afterwards: derive_file itself fails on it
        (tmp_path / name / f"c0_{SMALL[0]}").write_bytes(b"no longer an image")
    with session_scope(sqlite_url) as s:
        local_job = jobs.enqueue(s, "make-condition", {"imageset_id": sets["dloc"], "condition_id": "jpeg/q75"})
        ray_job = jobs.enqueue(
            s, "make-condition", {"imageset_id": sets["dray"], "condition_id": "jpeg/q75", "executor": "ray"}
        )
    infer_job = _infer(sqlite_url, model_id, sets["dray"], condition_id="blur/s1.0", executor="ray")
    _serve_once(sqlite_url)
    with session_scope(sqlite_url, readonly=True) as s:
        views = [jobs.get_job(s, j) for j in (local_job, ray_job, infer_job)]
        derived = s.execute(
            select(Image.imageset_id, Image.relpath, DerivedImage)
            .join(DerivedImage, DerivedImage.image_id == Image.id)
            .where(DerivedImage.condition_id == "jpeg/q75")
        ).all()
        blurred = s.scalars(select(Prediction).join(Run).where(Run.condition_id == "blur/s1.0")).all()
    assert [v.status for v in views] == ["done"] * 3, [v.traceback for v in views]
    assert views[0].result == views[1].result == {"derived": 3, "derive_errors": 2, "images": 5}
    by_set: dict[int, dict[str, DerivedImage]] = {}
    for set_id, rel, d in derived:
        by_set.setdefault(set_id, {})[rel] = d
    loc, ray_d = by_set[sets["dloc"]], by_set[sets["dray"]]
    assert loc.keys() == ray_d.keys() and len(loc) == 5
    for rel, d in loc.items():
        r = ray_d[rel]
        assert (r.has_file, r.error is None, r.seed, r.params) == (d.has_file, d.error is None, d.seed, d.params)
        if d.has_file:
            assert Path(r.path).parent.name == "jpeg__q75"
            assert (REPO_ROOT / r.path).read_bytes() == (REPO_ROOT / d.path).read_bytes()
        elif rel == "zz_broken.png":  # known unreadable at registration
            assert r.error == d.error and "unreadable image" in r.error
        else:
            assert rel == f"c0_{SMALL[0]}" and r.error.startswith("cannot derive: ")
            assert d.error.startswith("cannot derive: ")
    assert len(blurred) == 5
    assert sum(p.error is None for p in blurred) == 3


def test_cancel_stops_a_running_ray_job(
    ray_cluster: str, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("SPAI_DATA_DIR", str(tmp_path / "data"))
    set_id, model_id = _image_set(sqlite_url, tmp_path / "many", SMALL, copies=8)
    job_id = _infer(sqlite_url, model_id, set_id)  # no executor param: the worker's --executor
    view = cancel_when_started(sqlite_url, job_id, _spawn_ray_worker(ray_cluster), _wait, stop_timeout_s=120)
    assert view.status == "cancelled"
    with session_scope(sqlite_url, readonly=True) as s:
        assert s.scalars(select(Run.status)).one() == "cancelled"
    counts = _per_image_counts(sqlite_url)
    assert 2 <= sum(counts.values()) < 32 and set(counts.values()) == {1}


def test_kill_9_of_the_ray_driver_then_resume_gives_one_prediction_per_image(
    ray_cluster: str, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", pg_url)
    monkeypatch.setenv("SPAI_DATA_DIR", str(tmp_path / "data"))
    set_id, model_id = _image_set(pg_url, tmp_path / "crash", SMALL, copies=5)
    job_id = _infer(pg_url, model_id, set_id, executor="ray", ray_address=ray_cluster)
    first = _spawn_ray_worker("auto")  # the job's ray_address wins over the worker's flag
    try:
        _wait(pg_url, job_id, lambda v: v.progress_done >= 4)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    with session_scope(pg_url, readonly=True) as s:
        assert jobs.get_job(s, job_id).status == "running"  # orphaned; heartbeat goes stale
    assert 4 <= sum(_per_image_counts(pg_url).values()) < 20
    second = _spawn_ray_worker(ray_cluster, "--stale-after", "2")
    try:
        view = _wait(pg_url, job_id, lambda v: v.status in ("done", "failed"))
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=120)
        dispose_all()
    assert view.status == "done" and view.attempts == 2, view.traceback
    assert "resumed by worker" in view.log_tail and view.log_tail.count("CPU actor(s)") == 2
    counts = _per_image_counts(pg_url)
    assert len(counts) == 20 and set(counts.values()) == {1}


def test_two_ray_drivers_on_one_postgresql_run_each_job_once(
    ray_cluster: str, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", pg_url)
    monkeypatch.setenv("SPAI_DATA_DIR", str(tmp_path / "data"))
    job_ids = []
    for i in range(3):
        set_id, model_id = _image_set(pg_url, tmp_path / f"q{i}", SMALL[:2])
        job_ids.append(_infer(pg_url, model_id, set_id, ray_actors=1))
    workers = [_spawn_ray_worker(ray_cluster, "--once") for _ in range(2)]
    try:
        codes = [w.wait(timeout=WAIT_LIMIT_S) for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
        dispose_all()
    assert codes == [0, 0]
    with session_scope(pg_url, readonly=True) as s:
        views = [jobs.get_job(s, j) for j in job_ids]
    assert [v.status for v in views] == ["done"] * 3, [v.traceback for v in views]
    assert {v.attempts for v in views} == {1}
    assert all(v.log_tail.count("started by") == 1 for v in views)
    counts = _per_image_counts(pg_url)
    assert len(counts) == 6 and set(counts.values()) == {1}


def test_unknown_executor_fails_the_job_with_the_valid_choices(sqlite_url: str) -> None:
    with session_scope(sqlite_url) as s:
        job_id = jobs.enqueue(s, "infer", {"model_id": 1, "imageset_id": 1, "executor": "spark"})
    _serve_once(sqlite_url)
    with session_scope(sqlite_url, readonly=True) as s:
        view = jobs.get_job(s, job_id)
    assert view.status == "failed"
    assert "unknown executor 'spark'; valid: local, ray" in view.traceback


def test_plan_actors_uses_gpus_when_the_cluster_has_them() -> None:
    assert plan_actors(None, "auto", {"CPU": 16.0, "GPU": 4.0}) == ActorPlan(4, 1.0, 1.0)
    assert plan_actors(None, "auto", {"CPU": 3.0}) == ActorPlan(3, 0.0, 1.0)
    assert plan_actors(2, "cpu", {"CPU": 8.0, "GPU": 1.0}) == ActorPlan(2, 0.0, 1.0)
    with pytest.raises(ValueError, match="no GPU"):
        plan_actors(None, "cuda", {"CPU": 8.0})
    for bad in (0, -1, "2", True):
        with pytest.raises(ValueError, match="ray_actors must be a positive integer"):
            plan_actors(bad, "auto", {"CPU": 2.0})


def test_ray_address_prefers_the_job_param(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert ray_address(None) is None
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    assert ray_address(None) == "10.0.0.1:6379"
    assert ray_address("auto") == "auto"


def test_a_wrong_ray_address_fails_fast_and_clearly() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ConnectionError, match=f"no Ray cluster at '127.0.0.1:{port}'"):
        check_reachable(f"127.0.0.1:{port}")
    with pytest.raises(ValueError, match="must be 'auto', 'host:port'"):
        check_reachable("headnode")
    check_reachable("auto")
    check_reachable(None)


def test_the_worker_does_not_import_ray() -> None:
    code = "import sys, jobs.worker, jobs.executors.ray, dashboard.jobqueue; sys.exit('ray' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False, cwd=REPO_ROOT).returncode == 0


def test_the_ray_executor_maps_items_like_the_local_one(ray_cluster: str) -> None:
    """The executor alone: the same work items give the same results on Ray actors."""
    from jobs.executors.local import LocalExecutor
    from jobs.executors.ray import RayExecutor
    from jobs.work import ScoreItem, ScoreTask
    from spai.weights import model_file

    items = [ScoreItem(i, str(TINY_IMAGES / n)) for i, n in enumerate(SMALL)]
    task = ScoreTask(model_file(TINY_WEIGHTS, TINY_CFG), "cpu")

    def by_id(batches: list) -> dict[int, object]:
        return {r.image_id: r for b in batches for r in b}

    logs: list[str] = []
    remote = list(RayExecutor(ray_cluster).map(task, items, batch_size=3, log=logs.append))
    assert sorted(len(b) for b in remote) == [1, 3]
    local = by_id(LocalExecutor().map(task, items, batch_size=3))
    assert by_id(remote).keys() == local.keys() == set(range(len(SMALL)))
    for i, r in by_id(remote).items():  # torch threads differ: the last bits may too
        assert r.error is None and r.score == pytest.approx(local[i].score, abs=1e-6)
        assert r.attention == pytest.approx(local[i].attention, abs=1e-6)
    assert "in 2 batches on 2 CPU actor(s)" in logs[0]
