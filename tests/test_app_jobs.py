"""Jobs page (AppTest): launch an inference run with the real tiny model, live progress list,
cancel, failures with their traceback, retry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from streamlit.testing.v1 import AppTest

from dashboard import jobqueue
from dashboard.worker import Worker, WorkerConfig
from db import jobs
from db.imagesets import register_folder
from db.queries import count_predictions, run_summaries
from db.session import session_scope

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "dashboard" / "views" / "jobs.py")
TINY = ROOT / "tests" / "fixtures" / "spai-tiny"


def _page() -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=60).run()


def _store(url: str, tmp: Path) -> None:
    folder = tmp / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)).save(
            folder / f"t{i}.png")
    (folder / "bad.png").write_bytes(b"nope")
    with session_scope(url) as s:
        jobqueue.register_model(s, TINY / "spai_tiny_seed0.pth", name="tiny",
                                cfg=TINY / "spai_tiny.yaml", origin="trained")
        register_folder(s, folder, name="tiny-set", kind="fake")


def test_empty_store(page_store) -> None:
    at = _page()
    assert not at.exception
    assert "No model with a weights file" in at.info[0].value
    assert "Nothing queued or running." in [c.value for c in at.caption]
    assert "No jobs yet." in [c.value for c in at.caption]


def test_launch_infer_runs_to_done(page_store) -> None:
    url, tmp = page_store
    _store(url, tmp)
    at = _page()
    at.multiselect(key="jobs.sets").set_value(["tiny-set"]).run()
    at.button(key="jobs.launch").click().run()
    assert not at.exception
    assert "Queued job(s) 1." in at.success[0].value
    assert "#1 infer" in at.get("progress")[0].proto.text  # the live list shows it queued
    assert Worker(WorkerConfig(once=True), url=url).serve() == 1
    at = _page()
    assert "Nothing queued or running." in [c.value for c in at.caption]
    history = at.dataframe[0].value
    assert list(history["status"]) == ["done"] and history["progress"].iloc[0] == "4/4"
    with session_scope(url, readonly=True) as s:
        (run,) = run_summaries(s)
        assert (run.n_predictions, run.n_errors) == (4, 1)  # the broken file is one error
        assert count_predictions(s, run.run_id) == 4
    assert "run 1: 4 images to score" in at.code[-1].value  # the job's log


def test_cancel_failure_traceback_and_retry(page_store) -> None:
    url, tmp = page_store
    _store(url, tmp)
    with session_scope(url) as s:
        queued = jobqueue.enqueue_infer(s, model_id=1, imageset_id=1, condition_id="jpeg/q75")
        bad = jobs.enqueue(s, "infer", {"model_id": 1, "imageset_id": 1,
                                        "condition_id": "no-such-condition"})
    at = _page()
    assert len(at.get("progress")) == 2
    at.button(key=f"jobs.cancel.{queued}").click().run()
    with session_scope(url, readonly=True) as s:
        assert jobqueue.status(s, queued).status == "cancelled"
    assert Worker(WorkerConfig(once=True), url=url).serve() == 1  # only the bad job is left
    at = _page()
    at.selectbox(key="jobs.detail").set_value(bad).run()
    assert f"Job {bad} failed." in at.error[0].value
    assert "Unknown condition 'no-such-condition'" in at.code[0].value  # the traceback
    at.button(key="jobs.retry").click().run()
    with session_scope(url, readonly=True) as s:
        assert jobqueue.status(s, bad).status == "queued"
