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
from tiny_model import TINY_CFG, TINY_IMAGES, TINY_WEIGHTS

REPO = Path(__file__).resolve().parent.parent
APP = REPO / "dashboard" / "app.py"
TIMEOUT_S = 180  # first run loads torch and the model; generous on a shared 2-core machine


def use_store(monkeypatch: pytest.MonkeyPatch, db_file: Path, *, model: bool = True) -> None:
    """Point the app at ``db_file``, the tiny model (or none) and no worker."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{db_file}")
    monkeypatch.setenv("SPAI_DATA_DIR", str(db_file.parent / "data"))
    monkeypatch.setenv("SPAI_START_WORKER", "0")
    if model:
        monkeypatch.setenv("SPAI_MODEL_WEIGHTS", str(TINY_WEIGHTS))
        monkeypatch.setenv("SPAI_MODEL_CFG", str(TINY_CFG))
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


def score_own_sets(
    url: str, folder: Path, sets: dict[str, tuple[str, list[str], tuple[str, ...]]], *, model_name: str = "tiny"
) -> dict[tuple[str, str], int]:
    """Register fixture images as the user's own sets and score them with the tiny model, as a
    finished infer job leaves them: {name: (kind, fixture file names, condition ids)}.
    Returns {(set name, condition): run id}."""
    from db.imagesets import register_folder
    from db.models import Image as ImageRow
    from db.queries import bulk_insert_predictions, get_or_create_condition, get_or_create_model, get_or_create_run
    from db.session import session_scope
    from robustness.apply import apply_condition
    from spai.checkpoint import file_sha256
    from spai.detector import Detector
    from core.imageio import open_rgb

    det = Detector.load(TINY_WEIGHTS, cfg=TINY_CFG, device="cpu")
    runs = {}
    with session_scope(url) as s:
        model = get_or_create_model(
            s, model_name, origin="demo", path=str(TINY_WEIGHTS), sha256=file_sha256(TINY_WEIGHTS)
        )
        for name, (kind, files, conditions) in sets.items():
            root = folder / name
            root.mkdir(parents=True)
            for i, f in enumerate(files):
                shutil.copy(TINY_IMAGES / f, root / f"{i:02d}_{f}")
            iset_id = register_folder(s, root, name=name, kind=kind).imageset_ids[name]
            images = s.query(ImageRow).filter_by(imageset_id=iset_id).all()
            for cond in conditions:
                get_or_create_condition(s, cond)
                run = get_or_create_run(s, model.id, iset_id, cond, status="done")
                rows = []
                for im in images:
                    img = open_rgb(root / im.relpath)
                    if cond != "original":
                        img, _ = apply_condition(img, cond, im.relpath)
                    rows.append({"run_id": run.id, "image_id": im.id, "score": det.score_one(img, im.relpath).score})
                bulk_insert_predictions(s, rows)
                runs[(name, cond)] = run.id
    return runs


def shown_missing(at: AppTest) -> list[str]:
    """Every place where the page would show a user "None" or "nan": text elements with those
    words, and dataframes with missing values but no placeholder for them."""
    import re

    bad = []
    word = re.compile(r"\b(None|nan|NaN)\b")
    for kind in ("markdown", "caption", "info", "warning", "error", "success", "subheader", "title", "header"):
        bad += [f"{kind}: {t}" for t in texts(at, kind) if word.search(t)]
    for m in at.metric:
        if word.search(str(m.value)) or word.search(str(m.label)):
            bad.append(f"metric: {m.label} = {m.value}")
    for df in at.dataframe:
        if df.value.isna().to_numpy().any() and df.proto.placeholder in ("", "None", "nan"):
            bad.append(f"dataframe {df.proto.id}: missing values shown as None")
    for w in list(at.multiselect) + list(at.selectbox):
        if word.search(str(w.label)) or any(word.search(str(o)) for o in w.options):
            bad.append(f"selector {w.label}")
    return bad


def count_decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the sha256 of every file or byte string decoded through ``core.imageio`` (the one
    capped decoder) from now on; the real decoder still does the work."""
    import hashlib

    import core.imageio as imageio

    decoded: list[str] = []
    real = imageio.open_image

    def counting(source, *args, **kwargs):
        if isinstance(source, bytes):
            decoded.append(hashlib.sha256(source).hexdigest())
        elif not hasattr(source, "mode"):  # a path (a PIL image is not decoded again)
            decoded.append(hashlib.sha256(Path(source).read_bytes()).hexdigest())
        return real(source, *args, **kwargs)

    monkeypatch.setattr(imageio, "open_image", counting)
    return decoded


def record_batches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the number of images in every ``Detector.score_batch`` call from now on (the real
    method still scores them)."""
    from spai.detector import Detector

    sizes: list[int] = []
    real = Detector.score_batch

    def recording(self, items, *args, **kwargs):
        sizes.append(len(items))
        return real(self, items, *args, **kwargs)

    monkeypatch.setattr(Detector, "score_batch", recording)
    return sizes
