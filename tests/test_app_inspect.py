"""Inspect page (AppTest): upload, pick from a registered set, score history, conditions."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app_support import new_app, study_store, texts, use_store
from tiny_model import TINY_IMAGES

PHOTO = TINY_IMAGES / "07_photo_640x427.jpg"


def _open_inspect(at):
    at.run()
    at.switch_page("views/inspect.py").run()
    assert not at.exception
    assert texts(at, "title") == ["Inspect an image"]
    return at


def test_inspect_upload_shows_spectrum_patches_and_views(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_store(monkeypatch, tmp_path / "spai.db")
    at = _open_inspect(new_app())
    at.file_uploader(key="inspect.upload").set_value(("photo.jpg", PHOTO.read_bytes(), "image/jpeg")).run()
    assert not at.exception and not at.error
    assert float(at.metric[0].value) >= 0.0
    table = at.dataframe[0].value
    assert {"attention", "mean cos(orig, low)", "head_0"} <= set(table.columns)
    assert len(table) == len(at.selectbox(key="inspect.patch").options)
    # the default patch is the one with the most attention
    top = int(table["attention"].idxmax())
    assert at.selectbox(key="inspect.patch").value == top
    assert at.slider(key="inspect.radius").value == 16  # the model's masking radius
    at.slider(key="inspect.radius").set_value(48).run()
    assert any("low-pass, r < 48" in c for c in _image_captions(at))
    assert any("jpeg/q75: spectrum" in c for c in _image_captions(at))
    # each variant carries its score (robustness.apply.score_under_conditions, as on Score)
    scored = [c for c in _image_captions(at) if c.startswith("jpeg/q75, ") and ", score " in c]
    assert len(scored) == 1 and 0.0 <= float(scored[0].rsplit(" ", 1)[1]) <= 1.0
    assert any("No stored predictions" in c for c in texts(at, "caption"))
    from app_support import shown_missing

    assert shown_missing(at) == []


def test_inspect_decodes_the_upload_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    from app_support import count_decodes

    use_store(monkeypatch, tmp_path / "spai.db")
    at = _open_inspect(new_app())
    decoded = count_decodes(monkeypatch)
    at.file_uploader(key="inspect.upload").set_value(("photo.jpg", PHOTO.read_bytes(), "image/jpeg")).run()
    at.slider(key="inspect.radius").set_value(48).run()
    at.multiselect(key="inspect.conditions").set_value(["meme", "screenshot"]).run()
    assert not at.exception and not at.error
    assert decoded == [hashlib.sha256(PHOTO.read_bytes()).hexdigest()]


def _image_captions(at) -> list[str]:
    return [img.caption for node in at.main.get("image") for img in node.proto.imgs]


def test_inspect_broken_upload_shows_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_store(monkeypatch, tmp_path / "spai.db")
    at = _open_inspect(new_app())
    at.file_uploader(key="inspect.upload").set_value(("x.png", b"\x89PNG\r\n\x1a\nxx", "image/png"))
    at.run()
    assert not at.exception
    assert any(e.startswith("x.png:") for e in texts(at, "error"))


def test_inspect_image_from_a_registered_set_with_its_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from db.imagesets import register_folder
    from db.session import dispose_all, session_scope

    folder = tmp_path / "imgs"
    folder.mkdir()
    shutil.copy(PHOTO, folder / "photo.jpg")
    db = tmp_path / "spai.db"
    use_store(monkeypatch, db)
    with session_scope(f"sqlite:///{db}") as s:
        register_folder(s, folder, name="mine", kind="real")
    dispose_all()
    at = _open_inspect(new_app())
    at.radio(key="inspect.source").set_value("From an image set").run()
    assert not at.exception
    assert at.selectbox(key="inspect.image").format_func(at.selectbox(key="inspect.image").value) == "photo.jpg"
    assert at.metric and at.dataframe


def test_inspect_study_image_shows_score_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_store(monkeypatch, study_store(tmp_path))
    at = _open_inspect(new_app())
    at.radio(key="inspect.source").set_value("From an image set").run()
    assert not at.exception
    assert any("imported scores only" in i for i in texts(at, "info"))
    history = at.dataframe[0].value
    assert set(history["model"]) == {"SPAI (official weights, study)", "ROGER (study fused model)"}
    assert "original" in set(history["condition"]) and len(history) >= 5
