"""The app frame: navigation lists the pages that exist, the sidebar names the active model."""

from __future__ import annotations

from pathlib import Path

import pytest

from app_support import new_app, texts, use_store


def test_frame_lists_existing_pages_and_names_the_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_store(monkeypatch, tmp_path / "spai.db")
    at = new_app().run()
    assert not at.exception
    assert texts(at, "title") == ["Score images"]  # the default page
    side = " ".join(texts(at.sidebar, "markdown"))
    assert "spai_tiny_seed0.pth" in side and "(custom)" in side
    assert "DEMO" not in side
    for page in ("views/inspect.py", "views/models.py", "views/score.py"):
        at.switch_page(page).run()
        assert not at.exception, page
    assert texts(at, "title") == ["Score images"]


def test_frame_pages_are_listed_only_when_their_file_exists() -> None:
    from dashboard.app import PAGES, VIEWS

    files = [f for _, f, _, _ in PAGES]
    assert len(files) == 7 and len(set(files)) == 7
    for mine in ("score.py", "inspect.py", "models.py"):
        assert (VIEWS / mine).is_file()


def test_frame_without_any_model_file_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_store(monkeypatch, tmp_path / "spai.db", model=False)
    at = new_app().run()
    assert not at.exception
    assert any("No model file found" in e for e in texts(at, "error"))
    assert any("file not found" in w for w in texts(at.sidebar, "warning"))
    at.switch_page("views/inspect.py").run()
    assert any("No model file found" in e for e in texts(at, "error"))
    at.switch_page("views/models.py").run()  # lists no checkpoint, still renders
    assert not at.exception
