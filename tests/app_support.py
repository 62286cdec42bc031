"""Shared set-up for the AppTest page tests (imported by tests/test_app_*.py).

The app runs on a temporary SQLite store with the tiny real SPAI fixture as its model and no
background worker (the pages tested here never need one). The study import takes ~20 s, so it
is done once per process into a template file that each test copies.
"""

from __future__ import annotations

import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parent.parent
APP = REPO / "dashboard" / "app.py"
FIXTURE = REPO / "tests" / "fixtures" / "spai-tiny"
WEIGHTS = FIXTURE / "spai_tiny_seed0.pth"
CFG = FIXTURE / "spai_tiny.yaml"
IMAGES = FIXTURE / "images"
TIMEOUT_S = 180  # first run loads torch and the model; generous on a shared 2-core machine


def use_store(monkeypatch: pytest.MonkeyPatch, db_file: Path, *, model: bool = True) -> None:
    """Point the app at ``db_file``, the tiny model (or none) and no worker."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{db_file}")
    monkeypatch.setenv("SPAI_DATA_DIR", str(db_file.parent / "data"))
    monkeypatch.setenv("SPAI_START_WORKER", "0")
    if model:
        monkeypatch.setenv("SPAI_MODEL_WEIGHTS", str(WEIGHTS))
        monkeypatch.setenv("SPAI_MODEL_CFG", str(CFG))
    else:
        monkeypatch.setenv("SPAI_MODEL_WEIGHTS", str(db_file.parent / "missing.pth"))
        monkeypatch.delenv("SPAI_MODEL_CFG", raising=False)


@lru_cache(maxsize=1)
def study_template() -> Path:
    """A SQLite file with the robustness study imported (built once per test process)."""
    from db.importers import import_study
    from db.session import dispose_all, session_scope

    path = Path(tempfile.mkdtemp(prefix="spai-study-")) / "study.db"
    with session_scope(f"sqlite:///{path}") as s:
        import_study(s)
    dispose_all()
    return path


def study_store(tmp_path: Path) -> Path:
    """A private copy of the study store for one test."""
    dest = tmp_path / "spai.db"
    shutil.copy(study_template(), dest)
    return dest


def new_app() -> AppTest:
    return AppTest.from_file(str(APP), default_timeout=TIMEOUT_S)


def texts(at: AppTest, kind: str) -> list[str]:
    """Values of every element of one kind ("error", "caption", "markdown", ...)."""
    return [str(e.value) for e in getattr(at, kind)]
