"""The job skeleton without a worker process: typed parameters, the kind registry, the stop
checks, the executors' mapping (the real tiny model on small images), and the progress counter
against a real SQLite store."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from db import jobs as queue
from db.models import Prediction
from db.session import session_scope
from jobs.context import JobCancelled, JobContext, JobLost, WorkerStopping
from jobs.executors import batches, check_executor, executor_name, get_executor
from jobs.executors.local import LocalExecutor
from jobs.params import (
    CsvImport,
    InferParams,
    MakeConditionParams,
    ParamError,
    RegisterFolder,
    StudyImport,
    TrainParams,
    parse,
)
from jobs.registry import KINDS, get_kind, register_handler
from jobs.work import DeriveItem, DeriveTask, ScoreItem, ScoreTask, detector
from spai.weights import model_file
from tiny_model import TINY_CFG, TINY_IMAGES, TINY_WEIGHTS
from worker_support import image_set

NAMES = ["01_rgb_224x224.png", "04_rgb_97x130.png", "05_gray_320x256.png"]


# --- parameters ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "record",
    [
        InferParams(
            model_id=1, imageset_id=2, condition_id="jpeg/q75", batch_size=4, device="cpu", executor="ray", ray_actors=2
        ),
        MakeConditionParams(imageset_id=3, condition_id="blur/s1.0"),
        TrainParams(
            data_path="d.csv", epochs=2, learning_rate=1e-3, aug_conditions=(("meme", 0.3), ("screenshot", 0.5))
        ),
        StudyImport(),
        CsvImport(csv_path="a.csv", model_name="m"),
        RegisterFolder(folder="f", name="n", kind="real"),
    ],
)
def test_params_round_trip_through_the_stored_json(record) -> None:
    stored = record.to_dict()
    assert parse(record.job_kind, stored) == record
    assert all(v is not None for v in stored.values())  # unset optional fields are left out


def test_params_defaults_and_stored_forms() -> None:
    p = parse("infer", {"model_id": 1, "imageset_id": 2, "condition_id": None})
    assert (p.condition_id, p.batch_size, p.device, p.executor) == ("original", 16, "auto", None)
    t = parse("train", {"data_path": "d.csv", "aug_conditions": [{"id": "meme", "p": 1}], "learning_rate": 1})
    assert t.aug_conditions == (("meme", 1.0),) and t.learning_rate == 1.0
    assert t.to_dict()["aug_conditions"] == [{"id": "meme", "p": 1.0}]  # as the page queues it
    assert parse("import", {"source": "register-folder", "folder": "f", "name": "n", "kind": None}) == RegisterFolder(
        folder="f", name="n"
    )


@pytest.mark.parametrize(
    "kind,raw,message",
    [
        ("infer", {"imageset_id": 2}, "infer job: model_id is required"),
        ("infer", {"model_id": "1", "imageset_id": 2}, "model_id must be an integer, got '1'"),
        ("infer", {"model_id": True, "imageset_id": 2}, "model_id must be an integer, got True"),
        (
            "infer",
            {"model_id": 1, "imageset_id": 2, "batch": 4},
            "unknown parameter(s) batch; valid: batch_size, condition_id",
        ),
        ("infer", {"model_id": 1, "imageset_id": 2, "batch_size": 0}, "batch_size must be at least 1"),
        (
            "infer",
            {"model_id": 1, "imageset_id": 2, "executor": "spark"},
            "unknown executor 'spark'; valid: local, ray",
        ),
        (
            "make-condition",
            {"imageset_id": 1, "condition_id": "x", "ray_actors": 0},
            "ray_actors must be a positive integer, got 0",
        ),
        (
            "train",
            {"data_path": "d.csv", "aug_conditions": [{"id": "meme"}]},
            "each of aug_conditions must be {id: <condition id>, p: <probability>}",
        ),
        ("train", {"data_path": "d.csv", "epochs": 1.5}, "epochs must be an integer"),
        (
            "import",
            {"source": "nowhere"},
            "source must be 'study', 'csv', 'register-folder' or 'register-csv', got 'nowhere'",
        ),
        ("import", {"source": "csv", "csv_path": "a.csv"}, "import job: model_name is required"),
        ("import", ["study"], "source must be"),
        ("mine", {}, "no parameters are declared for job kind 'mine'"),
    ],
)
def test_bad_params_name_the_problem(kind: str, raw, message: str) -> None:
    with pytest.raises(ParamError) as err:
        parse(kind, raw)
    assert message in str(err.value)


# --- the kind registry --------------------------------------------------------------------------


def test_registry_refuses_a_second_handler_and_lists_the_kinds() -> None:
    import jobs.worker  # noqa: F401  (registers the built-in kinds)

    assert {"infer", "make-condition", "import", "train"} <= set(KINDS)
    with pytest.raises(ValueError, match="already registered"):
        register_handler("infer", lambda ctx: None)
    with pytest.raises(KeyError, match="Available: import, infer, make-condition"):
        get_kind("infre")
    assert get_kind("infer").parse({"model_id": 1, "imageset_id": 2}) == InferParams(model_id=1, imageset_id=2)


def test_a_kind_without_declared_params_gets_the_stored_dict() -> None:
    def run(ctx: JobContext) -> None:
        return None

    try:
        register_handler("skeleton-test", run)
        assert get_kind("skeleton-test").parse({"n": 1}) == {"n": 1}
    finally:
        KINDS.pop("skeleton-test", None)


# --- stop checks ----------------------------------------------------------------------------------


def _ctx(**kw) -> JobContext:
    return JobContext(1, "infer", InferParams(model_id=1, imageset_id=1), "w", **kw)


def test_cancel_stop_and_lost_raise_their_own_exception() -> None:
    ctx = _ctx()
    assert not ctx.should_stop()
    ctx.check()  # nothing to stop for
    ctx.apply_flag(True)  # a heartbeat saw the cancel request
    assert ctx.should_stop()
    with pytest.raises(JobCancelled):
        ctx.check()
    stopping = _ctx(stop_event=threading.Event())
    stopping.stop_event.set()
    with pytest.raises(WorkerStopping):
        stopping.check()
    taken = _ctx()
    taken.apply_flag(None)  # the job row is another worker's now
    with pytest.raises(JobLost, match="taken over"):
        taken.check()


def test_a_job_whose_heartbeats_stopped_landing_counts_as_lost() -> None:
    ctx = _ctx(lost_after=10.0)
    ctx.beat_ok_at = time.monotonic() - 11.0  # the last heartbeat landed 11 s ago
    assert ctx.should_stop() and ctx.lost_event.is_set()
    fresh = _ctx(lost_after=10.0)
    fresh.apply_flag(False)  # a heartbeat landed, no cancel
    assert not fresh.should_stop()


# --- executors: map work items to results -------------------------------------------------------


def test_batches_and_executor_names(monkeypatch: pytest.MonkeyPatch) -> None:
    assert batches(list(range(5)), 2) == [[0, 1], [2, 3], [4]]
    assert batches([], 3) == []
    with pytest.raises(ValueError, match="at least 1"):
        batches([1], 0)
    monkeypatch.delenv("SPAI_EXECUTOR", raising=False)
    assert executor_name(None) == "local"
    monkeypatch.setenv("SPAI_EXECUTOR", "ray")
    assert executor_name(None) == "ray" and executor_name("local") == "local"
    with pytest.raises(ValueError, match="unknown executor 'dask'; valid: local, ray"):
        check_executor("dask")
    assert isinstance(get_executor(InferParams(model_id=1, imageset_id=1, executor="local")), LocalExecutor)


def test_local_executor_scores_each_image_like_the_detector(tmp_path: Path) -> None:
    items = [ScoreItem(i, str(TINY_IMAGES / n)) for i, n in enumerate(NAMES)]
    items.append(ScoreItem(99, str(tmp_path / "missing.png")))
    task = ScoreTask(model_file(TINY_WEIGHTS, TINY_CFG), "cpu")
    out = list(LocalExecutor().map(task, items, batch_size=2))
    assert [len(b) for b in out] == [2, 2]
    got = {r.image_id: r for b in out for r in b}
    det = detector(model_file(TINY_WEIGHTS, TINY_CFG), "cpu")
    for i, n in enumerate(NAMES):
        ref = det.score_one(TINY_IMAGES / n)
        assert got[i].error is None and got[i].score == pytest.approx(ref.score, abs=1e-6)
        assert got[i].row(7)["run_id"] == 7 and len(got[i].attention) == ref.num_patches
    assert got[99].score is None and "missing.png" in got[99].error


def test_local_executor_stops_before_the_next_batch() -> None:
    items = [ScoreItem(i, str(TINY_IMAGES / NAMES[0])) for i in range(5)]
    seen = []

    def stop_after_first() -> bool:
        return len(seen) >= 1

    for batch in LocalExecutor().map(
        ScoreTask(model_file(TINY_WEIGHTS, TINY_CFG), "cpu"), items, batch_size=2, should_stop=stop_after_first
    ):
        seen.append(batch)
    assert [len(b) for b in seen] == [2]
    assert list(LocalExecutor().map(ScoreTask(model_file("never-loaded.pth")), [], batch_size=2)) == []


def test_derive_task_writes_files_and_reports_failures(tmp_path: Path) -> None:
    items = [
        DeriveItem(1, str(TINY_IMAGES / NAMES[0]), str(tmp_path / "a"), "key-a"),
        DeriveItem(2, None, str(tmp_path / "b"), "key-b", error="unreadable"),
        DeriveItem(3, str(tmp_path / "absent.png"), str(tmp_path / "c"), "key-c"),
    ]
    ((a, b, c),) = LocalExecutor().map(DeriveTask("jpeg/q75"), items, batch_size=8)
    assert a.error is None and Path(a.path).is_file() and a.params["quality"] == 75
    assert (b.path, b.error) == (None, "unreadable")
    assert c.path is None and c.error.startswith("cannot derive")


# --- the progress counter, in the store ---------------------------------------------------------


def test_progress_is_a_counter_advanced_with_the_rows_actually_added(sqlite_url: str, tmp_path: Path) -> None:
    """Each batch advances the job's progress by the rows it added, in the same transaction;
    a batch whose rows are already stored adds nothing (no recount of the run)."""
    from db.models import Image
    from db.queries import get_or_create_run
    from jobs.derive import ensure_condition_row
    from jobs.infer import InferRun, write_scored
    from jobs.work import Scored

    set_id, model_id = image_set(sqlite_url, tmp_path / "set", NAMES)
    with session_scope(sqlite_url) as s:
        job_id = queue.enqueue(s, "infer", {"model_id": model_id, "imageset_id": set_id})
        queue.claim(s, "w", ["infer"])
        ensure_condition_row(s, "original")
        run_id = get_or_create_run(s, model_id, set_id, "original").id
        a, b, c = s.scalars(select(Image.id).where(Image.imageset_id == set_id).order_by(Image.id))
    ctx = JobContext(job_id, "infer", InferParams(model_id=model_id, imageset_id=set_id), "w", sqlite_url)
    ctx.progress(0, 3)
    r = InferRun(run_id, None, "tiny", ScoreTask(model_file(TINY_WEIGHTS)))
    write_scored(ctx, r, [Scored(a, 0.5), Scored(b, 0.25)])
    write_scored(ctx, r, [Scored(b, 0.25), Scored(c, None, error="bad")])  # b is stored already
    with session_scope(sqlite_url, readonly=True) as s:
        view = queue.get_job(s, job_id)
        stored = s.scalar(select(func.count()).select_from(Prediction))
    assert ctx.done == view.progress_done == stored == 3 and view.progress_total == 3
