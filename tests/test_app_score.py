"""Score page (AppTest): upload -> score and verdict; broken uploads; what-if; calibrated bands."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from PIL import Image

from app_support import IMAGES, new_app, texts, use_store

PHOTO = (IMAGES / "02_rgb_500x300.png").read_bytes()


def _huge_png() -> bytes:
    """A tiny file that declares 10001 x 10001 pixels (over the 100 M pixel cap)."""
    buf = io.BytesIO()
    Image.new("1", (10001, 10001)).save(buf, "PNG")
    return buf.getvalue()


def _upload(at, files):
    at.file_uploader(key="score.uploads").set_value(files)
    return at.run()


def test_score_upload_shows_score_verdict_overlay_and_grid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_store(monkeypatch, tmp_path / "spai.db")
    at = new_app().run()
    assert not at.exception
    _upload(at, [("photo.png", PHOTO, "image/png")])
    assert not at.exception and not at.error
    [metric] = at.metric
    score = float(metric.value)
    assert 0.0 <= score <= 1.0
    from spai.detector import Detector
    from app_support import CFG, WEIGHTS

    expected = Detector.load(WEIGHTS, cfg=CFG, device="cpu").score_one(PHOTO).score
    assert score == pytest.approx(expected, abs=1e-4)  # the uploaded bytes, as they are
    label = "likely AI-generated" if score >= 0.5 else "likely real"
    assert any(label in m for m in texts(at, "markdown"))
    assert any("0.5 decision threshold" in c for c in texts(at, "caption"))
    assert any("No reference run" in i for i in texts(at, "info"))
    sha = hashlib.sha256(PHOTO).hexdigest()[:12]
    assert at.toggle(key=f"score.overlay.{sha}").value is True
    at.slider(key=f"score.opacity.{sha}").set_value(0.8).run()
    at.toggle(key=f"score.overlay.{sha}").set_value(False).run()
    assert not at.exception
    assert at.slider(key=f"score.opacity.{sha}").disabled


def test_score_broken_uploads_show_errors_and_the_good_one_still_scores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_store(monkeypatch, tmp_path / "spai.db")
    at = new_app().run()
    _upload(at, [
        ("notes.png", b"this is not an image", "image/png"),
        ("cut.png", PHOTO[: len(PHOTO) // 2], "image/png"),
        ("huge.png", _huge_png(), "image/png"),
        ("photo.png", PHOTO, "image/png"),
    ])
    assert not at.exception
    errors = texts(at, "error")
    assert len(errors) == 3
    assert "notes.png: not an image" in errors[0]
    assert "cut.png: truncated image data" in errors[1]
    assert "huge.png: image too large" in errors[2]
    assert len(at.metric) == 1  # the good image is scored all the same


def test_score_what_if_scores_each_condition(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_store(monkeypatch, tmp_path / "spai.db")
    at = new_app().run()
    _upload(at, [("photo.png", PHOTO, "image/png")])
    sha = hashlib.sha256(PHOTO).hexdigest()[:12]
    at.multiselect(key=f"score.whatif.{sha}").set_value(["jpeg/q75", "meme"]).run()
    at.button(key=f"score.run.{sha}").click().run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["condition"]) == ["original", "jpeg/q75", "meme"]
    assert table["score"].between(0, 1).all()
    assert table["change"].iloc[0] == 0.0


def test_score_verdict_is_calibrated_by_a_reference_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reference run of the active model on a real set gives thresholds at 1% and 5% FPR."""
    from app_support import WEIGHTS
    from db.models import ORIGINAL
    from db.queries import (bulk_insert_predictions, get_or_create_model, get_or_create_run,
                            insert_ignore)
    from db.imagesets import ensure_imageset
    from db.models import Image as ImageRow
    from db.session import dispose_all, session_scope
    from spai.checkpoint import file_sha256

    db = tmp_path / "spai.db"
    use_store(monkeypatch, db)
    with session_scope(f"sqlite:///{db}") as s:
        model = get_or_create_model(s, "tiny", origin="trained", path=str(WEIGHTS),
                                    sha256=file_sha256(WEIGHTS))
        real = ensure_imageset(s, "reals", kind="real", root=None, origin="test")
        insert_ignore(s, ImageRow.__table__, [
            {"imageset_id": real.id, "relpath": f"r{i}.png", "has_file": False}
            for i in range(200)])
        ids = [i for (i,) in s.execute(ImageRow.__table__.select().with_only_columns(
            ImageRow.id).where(ImageRow.imageset_id == real.id))]
        from db.queries import get_or_create_condition

        get_or_create_condition(s, ORIGINAL)
        run = get_or_create_run(s, model.id, real.id, ORIGINAL, status="done")
        bulk_insert_predictions(s, [{"run_id": run.id, "image_id": iid, "score": k / 1000}
                                    for k, iid in enumerate(ids)])  # reals score 0 .. 0.199
    dispose_all()
    at = new_app().run()
    _upload(at, [("photo.png", PHOTO, "image/png")])
    assert not at.exception
    at.select_slider(key="score.fpr_loose").set_value(0.1).run()
    assert any("200 real reference images" in c and "tiny / reals" in c and "10% FPR" in c
               for c in texts(at, "caption"))
    score = float(at.metric[0].value)
    assert score > 0.199  # above every real reference score -> beyond the 1% FPR threshold
    assert any("likely AI-generated" in m for m in texts(at, "markdown"))


def test_score_reference_fprs_are_chosen_on_the_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from db.dashboard_models import ReferenceThresholds, verdict

    use_store(monkeypatch, tmp_path / "spai.db")
    at = new_app().run()
    assert at.select_slider(key="score.fpr_strict").value == 0.01
    assert at.select_slider(key="score.fpr_loose").value == 0.05
    at.select_slider(key="score.fpr_loose").set_value(0.2).run()
    assert not at.exception
    ref = ReferenceThresholds({0.01: 0.9, 0.2: 0.3}, n_real=100, sources=("m / reals",))
    assert verdict(0.95, ref).label == "likely AI-generated"
    assert verdict(0.5, ref).label == "inconclusive"
    assert verdict(0.1, ref).label == "likely real"
    assert "20%" in verdict(0.1, ref).meaning
