"""The landing page's first-run guide: four steps as buttons, ticked off from the store, gone
once all are done."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app_support import new_app, study_store, texts, use_store
from dashboard import jobqueue
from jobs.worker import JobWorker, WorkerConfig
from db.imagesets import register_labelled_folder
from db.session import dispose_all, session_scope
from tiny_model import TINY_CFG, TINY_IMAGES, TINY_WEIGHTS

STEPS = ["guide.scored", "guide.study", "guide.sets", "guide.job"]


def _guide_buttons(at) -> dict[str, bool]:
    """Guide button key -> disabled (done)."""
    return {b.key: b.disabled for b in at.button if b.key in STEPS}


def test_fresh_store_shows_every_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_store(monkeypatch, tmp_path / "spai.db")
    at = new_app().run()
    assert not at.exception
    assert "**Getting started**" in texts(at, "markdown")
    assert _guide_buttons(at) == dict.fromkeys(STEPS, False)
    at.button(key="guide.scored").click().run()
    assert texts(at, "title") == ["Score images"]  # the button opens the page
    assert "**Getting started**" not in texts(at, "markdown")  # only on the Start page
    at.file_uploader(key="score.uploads").set_value(
        [("photo.png", (TINY_IMAGES / "02_rgb_500x300.png").read_bytes(), "image/png")]
    ).run()
    at.switch_page("views/home.py").run()
    assert _guide_buttons(at)["guide.scored"] is True  # scored in this session
    at.button(key="guide.study").click().run()  # queues the study import right here
    assert any("Queued import job 1" in x for x in texts(at, "success"))
    with session_scope(f"sqlite:///{tmp_path / 'spai.db'}", readonly=True) as s:
        assert jobqueue.describe(s, jobqueue.recent(s)) == {1: "Import the robustness study"}
    at = new_app().run()
    assert "guide.study" not in _guide_buttons(at)  # queued: no second click
    assert any("Import queued" in c for c in texts(at, "caption"))
    at.button(key="guide.sets").click().run()
    assert texts(at, "title") == ["Image sets"]
    dispose_all()


def test_steps_tick_off_and_the_guide_goes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = study_store(tmp_path)  # the study is imported
    use_store(monkeypatch, db)
    url = f"sqlite:///{db}"
    at = new_app().run()
    assert _guide_buttons(at) == {"guide.scored": False, "guide.study": True, "guide.sets": False, "guide.job": False}
    for label in ("real", "fake"):
        (tmp_path / "mine" / label).mkdir(parents=True)
        shutil.copy(TINY_IMAGES / "07_photo_640x427.jpg", tmp_path / "mine" / label / "a.jpg")
    with session_scope(url) as s:
        ids = register_labelled_folder(s, tmp_path / "mine", name="mine").imageset_ids
    at = new_app().run()
    assert _guide_buttons(at)["guide.sets"] is True and _guide_buttons(at)["guide.job"] is False

    with session_scope(url) as s:
        jobqueue.enqueue_score_set(
            s, weights=TINY_WEIGHTS, cfg=TINY_CFG, imageset_ids=[ids["mine-real"]], conditions=["original"]
        )
    assert JobWorker(WorkerConfig(once=True), url=url).serve() == 1
    at = new_app().run()
    assert not at.exception
    assert "**Getting started**" not in texts(at, "markdown") and not _guide_buttons(at)
    dispose_all()
