"""The app frame: navigation lists the pages that exist, the sidebar names the active model."""

from __future__ import annotations

from pathlib import Path

import pytest

from app_support import APP, new_app, texts, use_store
from tiny_model import TINY_IMAGES


def test_frame_lists_existing_pages_and_names_the_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_store(monkeypatch, tmp_path / "spai.db")
    at = new_app().run()
    assert not at.exception
    assert texts(at, "title") == ["SPAI Robustness Lab"]  # the start page, served at "/"
    side = " ".join(texts(at.sidebar, "markdown"))
    assert "spai_tiny_seed0.pth" in side and "(trained)" in side
    assert "DEMO" not in side
    for page in ("views/inspect.py", "views/models.py", "views/score.py"):
        at.switch_page(page).run()
        assert not at.exception, page
    assert texts(at, "title") == ["Score images"]


def _app_pages() -> list[tuple[str, str, str, str]]:
    """app.py's PAGES, read from the source (importing app.py would run it)."""
    import ast

    tree = ast.parse(APP.read_text())
    [pages] = [n.value for n in tree.body if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "PAGES"]
    return ast.literal_eval(pages)


def test_start_page_links_every_other_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Start page's quick links reach every page of the navigation (Train was missing)."""
    use_store(monkeypatch, tmp_path / "spai.db")
    at = new_app().run()
    assert not at.exception
    linked = {el.proto.page for el in at.get("page_link")}  # each page's url path: its file stem
    stems = {Path(f).stem for _, f, _, _ in _app_pages()} - {"home"}
    assert stems <= linked, stems - linked


def test_frame_registers_all_seven_pages() -> None:
    """PAGES names the seven pages (read from the source: importing app.py would run it)."""
    pages = _app_pages()
    titles = [t for _, _, t, _ in pages]
    assert titles == ["Start", "Score", "Inspect", "Image sets", "Jobs", "Compare", "Models", "Train"]
    for mine in ("home.py", "score.py", "inspect.py", "models.py"):
        assert (APP.parent / "views" / mine).is_file()
    # Regression: opening /score said "Page not found". Streamlit serves the default (first)
    # page at "/" only, ignoring its url_path; the start page takes "/", so every working page
    # has its own URL (its file stem, as app.py's navigation() sets url_path).
    assert pages[0][1] == "home.py"
    stems = [Path(f).stem for _, f, _, _ in pages[1:]]
    assert "score" in stems and len(set(stems)) == len(stems)
    assert "url_path=Path(file).stem" in APP.read_text()


def test_frame_without_any_model_file_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_store(monkeypatch, tmp_path / "spai.db", model=False)
    at = new_app().run()
    assert not at.exception
    at.switch_page("views/score.py").run()
    assert any("No model file found" in e for e in texts(at, "error"))
    assert any("file not found" in w for w in texts(at.sidebar, "warning"))
    at.switch_page("views/inspect.py").run()
    assert any("No model file found" in e for e in texts(at, "error"))
    at.switch_page("views/models.py").run()  # lists no checkpoint, still renders
    assert not at.exception


def test_frame_reports_a_worker_that_cannot_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unreachable store: the worker start fails, the sidebar says why, pages still run."""
    use_store(monkeypatch, tmp_path / "spai.db")
    monkeypatch.setenv("SPAI_START_WORKER", "1")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'missing-dir' / 'x' / 'db'}")
    (tmp_path / "missing-dir").write_text("a file where a folder should be")
    at = new_app().run()
    assert not at.exception
    assert any("Background worker not started" in w for w in texts(at.sidebar, "warning")), (
        texts(at.sidebar, "warning"),
        texts(at, "warning"),
        texts(at, "error"),
    )
    at.switch_page("views/score.py").run()
    assert texts(at, "title") == ["Score images"]
    at.file_uploader(key="score.uploads").set_value(
        [("photo.png", (TINY_IMAGES / "02_rgb_500x300.png").read_bytes(), "image/png")]
    ).run()
    assert not at.exception and len(at.metric) == 1  # scoring works without the store
    assert any("store is unavailable" in w for w in texts(at, "warning"))
    at.switch_page("views/inspect.py").run()
    assert not at.exception


def test_busy_store_says_so_and_the_page_recovers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process holding SQLite's write lock: the page says the store is busy and that it
    retries, instead of a traceback; once the lock is released the next run renders (14.2)."""
    import sqlite3

    from db.session import dispose_all

    use_store(monkeypatch, tmp_path / "spai.db")
    assert not new_app().run().exception  # creates and migrates the store
    dispose_all()
    monkeypatch.setenv("SPAI_SQLITE_BUSY_MS", "200")
    holder = sqlite3.connect(tmp_path / "spai.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        at = new_app()
        at.switch_page("views/jobs.py").run()
        assert not at.exception
        assert any("The store is busy" in w for w in texts(at, "warning"))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    at.run()
    assert not at.exception
    assert not any("The store is busy" in w for w in texts(at, "warning"))
    dispose_all()


def test_frame_and_page_modules_do_not_import_torch() -> None:
    """Cold start: the frame (dashboard/app.py) and the modules the Score and Inspect pages
    import at their top leave torch to the model load, after the first paint (a regression
    here puts seconds of torch import before anything shows)."""
    import subprocess
    import sys

    from app_support import REPO

    modules = [
        "dashboard.access",
        "dashboard.components",
        "dashboard.resources",
        "dashboard.state",
        "dashboard.guide",
        "spai.weights",
        "db.verdicts",
        "db.stored_models",
        "db.image_lookup",
        "db.session",
        "robustness.apply",
        "spai.calibration",
        "spai.overlay",
    ]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(sorted(m for m in ('torch', 'timm', 'torchvision') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    for file in ("app.py", "views/score.py", "views/inspect.py"):
        source = (REPO / "dashboard" / file).read_text()
        top = [ln.split("#")[0] for ln in source.splitlines() if ln.startswith(("import ", "from "))]
        assert not any("spai.detector" in ln or "spai.visualize" in ln or "torch" in ln for ln in top), file
