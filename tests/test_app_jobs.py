"""Jobs page (AppTest): launch an inference run with the real tiny model, live progress list,
cancel, failures with their traceback, retry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from streamlit.testing.v1 import AppTest

from dashboard import jobqueue
from jobs.worker import JobWorker, WorkerConfig
from db import jobs
from db.imagesets import register_folder
from db.owners import LOCAL
from db.queries import count_predictions, run_summaries
from db.session import session_scope
from tiny_model import TINY_CFG, TINY_WEIGHTS

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "dashboard" / "views" / "jobs.py")


def _page() -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=60).run()


def _store(url: str, tmp: Path, *, model: bool = True) -> None:
    folder = tmp / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)).save(folder / f"t{i}.png")
    (folder / "bad.png").write_bytes(b"nope")
    with session_scope(url) as s:
        if model:
            jobqueue.register_model(s, TINY_WEIGHTS, name="tiny", cfg=TINY_CFG, origin="trained")
        register_folder(s, folder, name="tiny-set", kind="fake")


def test_empty_store(page_store) -> None:
    at = _page()
    assert not at.exception
    assert "No image set with files yet" in at.info[0].value
    assert "Nothing queued or running." in [c.value for c in at.caption]
    assert "No jobs yet." in [c.value for c in at.caption]


def test_launch_infer_runs_to_done(page_store, monkeypatch) -> None:
    """Regression: jobs were named ``model_id=3, imageset_id=21`` and launching needed a
    "Register the active model" click first."""
    url, tmp = page_store
    _store(url, tmp, model=False)
    monkeypatch.setenv("SPAI_MODEL_WEIGHTS", str(TINY_WEIGHTS))
    monkeypatch.setenv("SPAI_MODEL_CFG", str(TINY_CFG))
    at = _page()
    assert at.selectbox(key="jobs.model").value == "spai_tiny_seed0 (active model)"
    at.multiselect(key="jobs.sets").set_value(["tiny-set"]).run()
    at.button(key="jobs.launch").click().run()
    assert not at.exception
    assert "Queued job(s) 1." in at.success[0].value
    sentence = "Score tiny-set with spai_tiny_seed0 on the original images"
    assert f"#1 {sentence}: queued 0/? images" in at.get("progress")[0].proto.text
    assert JobWorker(WorkerConfig(once=True), url=url).serve() == 1
    at = _page()
    assert "Nothing queued or running." in [c.value for c in at.caption]
    history = at.dataframe[0].value
    assert list(history["job"]) == [sentence]
    assert list(history["status"]) == ["done"] and history["progress"].iloc[0] == "4/4 images"
    assert "None" not in history.to_string() and "nan" not in history.to_string()
    with session_scope(url, readonly=True) as s:
        (run,) = run_summaries(s)
        assert (run.n_predictions, run.n_errors) == (4, 1)  # the broken file is one error
        assert count_predictions(s, run.run_id) == 4
    assert "run 1: 4 images to score" in at.code[-1].value  # the job's log
    assert "(compare?run=1)" in at.markdown[-1].value  # the finished run opens in Compare
    # the model registered itself: the next launch picks the same model row
    assert "spai_tiny_seed0 (active model)" == at.selectbox(key="jobs.model").value
    assert at.selectbox(key="jobs.model").options == ["spai_tiny_seed0 (active model)"]


def test_import_jobs_count_and_read_like_sentences(page_store) -> None:
    """Regression: import jobs showed ``0/?`` when done."""
    url, tmp = page_store
    folder = tmp / "mine"
    for label in ("real", "fake"):
        (folder / label).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (24, 24), (40 * i, 90, 10)).save(folder / label / f"{i}.png")
    with session_scope(url) as s:
        jobqueue.enqueue_register_folder(s, str(folder), name="mine", kind=None, actor=LOCAL)
        jobs.enqueue(s, "make-condition", {"imageset_id": 99, "condition_id": "jpeg/q75"})
    assert JobWorker(WorkerConfig(once=True, max_jobs=1), url=url).serve() == 1
    at = _page()
    history = at.dataframe[0].value.set_index("id")
    assert history.loc[1, "job"] == f"Register folder {folder} as mine-real and mine-fake"
    assert (history.loc[1, "status"], history.loc[1, "progress"]) == ("done", "4/4 files")
    assert history.loc[2, "job"] == "Derive set 99 (deleted) under jpeg/q75"
    assert history.loc[2, "progress"] == "0/? images"


def test_cancel_failure_traceback_and_retry(page_store) -> None:
    url, tmp = page_store
    _store(url, tmp)
    with session_scope(url) as s:
        queued = jobqueue.enqueue_infer(s, model_id=1, imageset_id=1, condition_id="jpeg/q75")
        bad = jobs.enqueue(s, "infer", {"model_id": 1, "imageset_id": 1, "condition_id": "no-such-condition"})
    at = _page()
    assert len(at.get("progress")) == 2
    at.button(key=f"jobs.cancel.{queued}").click().run()
    with session_scope(url, readonly=True) as s:
        assert jobqueue.status(s, queued).status == "cancelled"
    assert JobWorker(WorkerConfig(once=True), url=url).serve() == 1  # only the bad job is left
    at = _page()
    at.selectbox(key="jobs.detail").set_value(bad).run()
    assert f"Job {bad} failed." in at.error[0].value
    assert "Unknown condition 'no-such-condition'" in at.code[0].value  # the traceback
    at.button(key="jobs.retry").click().run()
    with session_scope(url, readonly=True) as s:
        assert jobqueue.status(s, bad).status == "queued"
