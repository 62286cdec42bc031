"""Score page (AppTest): upload -> score and verdict; broken uploads; what-if; calibrated bands."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from PIL import Image

from app_support import new_app, texts, use_store
from tiny_model import TINY_CFG, TINY_IMAGES, TINY_WEIGHTS

PHOTO = (TINY_IMAGES / "02_rgb_500x300.png").read_bytes()


def _huge_png() -> bytes:
    """A tiny file that declares 10001 x 10001 pixels (over the 100 M pixel cap)."""
    buf = io.BytesIO()
    Image.new("1", (10001, 10001)).save(buf, "PNG")
    return buf.getvalue()


def _score_page():
    """The app opened on the Score page (the start page is the default)."""
    at = new_app().run()
    return at.switch_page("views/score.py").run()


def _upload(at, files):
    at.file_uploader(key="score.uploads").set_value(files)
    return at.run()


def test_score_upload_shows_score_verdict_overlay_and_grid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_store(monkeypatch, tmp_path / "spai.db")
    at = _score_page()
    assert not at.exception
    _upload(at, [("photo.png", PHOTO, "image/png")])
    assert not at.exception and not at.error
    [metric] = at.metric
    score = float(metric.value)
    assert 0.0 <= score <= 1.0
    from spai.detector import Detector

    expected = Detector.load(TINY_WEIGHTS, cfg=TINY_CFG, device="cpu").score_one(PHOTO).score
    assert score == pytest.approx(expected, abs=1e-4)  # the uploaded bytes, as they are
    label = "likely AI-generated" if score > 0.5 else "likely real"
    # Regression: a "verified" icon stood next to an uncalibrated "likely real".
    [verdict] = [m for m in texts(at, "markdown") if label in m]
    assert "uncalibrated" in verdict and ":material/" not in verdict
    assert any("0.5 decision threshold" in c for c in texts(at, "caption"))
    assert any("needs at least 20 real images scored by this model" in i and "0 so far" in i for i in texts(at, "info"))
    sha = hashlib.sha256(PHOTO).hexdigest()[:12]
    assert at.toggle(key=f"score.overlay.{sha}").value is True
    assert at.radio(key=f"score.scale.{sha}").value == "uniform"  # the fixed scale by default
    assert any("grey = uniform attention" in c for c in texts(at, "caption"))
    at.radio(key=f"score.scale.{sha}").set_value("stretch").run()
    assert any("stretched to this image" in c and "a difference of" in c for c in texts(at, "caption"))
    at.slider(key=f"score.opacity.{sha}").set_value(0.8).run()
    at.toggle(key=f"score.overlay.{sha}").set_value(False).run()
    assert not at.exception
    assert at.slider(key=f"score.opacity.{sha}").disabled


def test_score_broken_uploads_show_errors_and_the_good_one_still_scores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_store(monkeypatch, tmp_path / "spai.db")
    at = _score_page()
    _upload(
        at,
        [
            ("notes.png", b"this is not an image", "image/png"),
            ("cut.png", PHOTO[: len(PHOTO) // 2], "image/png"),
            ("huge.png", _huge_png(), "image/png"),
            ("photo.png", PHOTO, "image/png"),
        ],
    )
    assert not at.exception
    errors = texts(at, "error")
    assert len(errors) == 3
    assert "notes.png: not an image" in errors[0]
    assert "cut.png: truncated image data" in errors[1]
    assert "huge.png: image too large" in errors[2]
    assert len(at.metric) == 1  # the good image is scored all the same


def test_score_what_if_scores_each_condition(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_store(monkeypatch, tmp_path / "spai.db")
    at = _score_page()
    _upload(at, [("photo.png", PHOTO, "image/png")])
    sha = hashlib.sha256(PHOTO).hexdigest()[:12]
    at.multiselect(key=f"score.whatif.{sha}").set_value(["jpeg/q75", "meme"]).run()
    at.button(key=f"score.run.{sha}").click().run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["condition"]) == ["original", "jpeg/q75", "meme"]
    assert table["score"].between(0, 1).all()
    assert table["change"].iloc[0] == 0.0


def test_score_decodes_each_upload_once_and_scores_variants_in_one_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scoring, the overlay controls, reruns and the what-if variants all use one decode per
    upload; the variants go through the detector as one batch, with one-by-one scores."""
    from app_support import count_decodes, record_batches
    from robustness.apply import apply_condition
    from spai.detector import Detector
    from core.imageio import open_rgb

    use_store(monkeypatch, tmp_path / "spai.db")
    at = _score_page()
    decoded, batches = count_decodes(monkeypatch), record_batches(monkeypatch)
    other = (TINY_IMAGES / "07_photo_640x427.jpg").read_bytes()
    _upload(at, [("photo.png", PHOTO, "image/png"), ("other.jpg", other, "image/jpeg")])
    assert not at.exception and len(at.metric) == 2
    full = hashlib.sha256(PHOTO).hexdigest()
    sha = full[:12]
    at.radio(key=f"score.scale.{sha}").set_value("stretch").run()
    at.toggle(key=f"score.overlay.{sha}").set_value(False).run()
    conditions = ["jpeg/q75", "meme", "resize/x0.5"]
    at.multiselect(key=f"score.whatif.{sha}").set_value(conditions).run()
    at.button(key=f"score.run.{sha}").click().run()
    at.run()
    assert not at.exception
    assert sorted(decoded) == sorted([full, hashlib.sha256(other).hexdigest()])  # once each
    assert batches == [1, 1, 3]  # the two uploads, then the three variants together
    table = at.dataframe[0].value
    assert list(table["condition"]) == ["original", *conditions]
    _upload(at, [("other.jpg", other, "image/jpeg")])  # the first upload removed ...
    _upload(at, [("photo.png", PHOTO, "image/png"), ("other.jpg", other, "image/jpeg")])
    assert decoded.count(full) == 2  # ... and added again: decoded afresh (nothing kept)
    det = Detector.load(TINY_WEIGHTS, cfg=TINY_CFG, device="cpu")
    original = open_rgb(PHOTO)
    for cid, score in zip(conditions, table["score"][1:]):
        variant, _ = apply_condition(original, cid, full)
        assert abs(score - det.score_one(variant).score) < 1e-6  # equal to one-by-one scoring


def test_score_verdict_is_calibrated_by_a_reference_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reference run of the active model on a real set gives thresholds at 1% and 5% FPR."""

    from db.models import ORIGINAL
    from db.queries import bulk_insert_predictions, get_or_create_model, get_or_create_run, insert_ignore
    from db.imagesets import ensure_imageset
    from db.models import Image as ImageRow
    from db.session import dispose_all, session_scope
    from spai.checkpoint import file_sha256

    db = tmp_path / "spai.db"
    use_store(monkeypatch, db)
    with session_scope(f"sqlite:///{db}") as s:
        model = get_or_create_model(
            s, "tiny", origin="trained", path=str(TINY_WEIGHTS), sha256=file_sha256(TINY_WEIGHTS)
        )
        real = ensure_imageset(s, "reals", kind="real", root=None, origin="test")
        insert_ignore(
            s,
            ImageRow.__table__,
            [{"imageset_id": real.id, "relpath": f"r{i}.png", "has_file": False} for i in range(200)],
        )
        ids = [
            i
            for (i,) in s.execute(
                ImageRow.__table__.select().with_only_columns(ImageRow.id).where(ImageRow.imageset_id == real.id)
            )
        ]
        from db.queries import get_or_create_condition

        get_or_create_condition(s, ORIGINAL)
        run = get_or_create_run(s, model.id, real.id, ORIGINAL, status="done")
        bulk_insert_predictions(
            s, [{"run_id": run.id, "image_id": iid, "score": k / 1000} for k, iid in enumerate(ids)]
        )  # reals score 0 .. 0.199
    dispose_all()
    at = _score_page()
    _upload(at, [("photo.png", PHOTO, "image/png")])
    assert not at.exception
    at.select_slider(key="score.fpr_loose").set_value(0.1).run()
    assert any(
        "200 real reference images" in c and "tiny / reals" in c and "10% FPR" in c for c in texts(at, "caption")
    )
    score = float(at.metric[0].value)
    assert score > 0.199  # above every real reference score -> beyond the 1% FPR threshold
    assert any("likely AI-generated" in m for m in texts(at, "markdown"))


def test_score_reference_fprs_are_chosen_on_the_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from db.verdicts import ReferenceThresholds, verdict

    use_store(monkeypatch, tmp_path / "spai.db")
    at = _score_page()
    assert at.select_slider(key="score.fpr_strict").value == 0.01
    assert at.select_slider(key="score.fpr_loose").value == 0.05
    at.select_slider(key="score.fpr_loose").set_value(0.2).run()
    assert not at.exception
    ref = ReferenceThresholds({0.01: 0.9, 0.2: 0.3}, n_real=100, sources=("m / reals",))
    assert verdict(0.95, ref).label == "likely AI-generated"
    assert verdict(0.5, ref).label == "inconclusive"
    assert verdict(0.1, ref).label == "likely real"
    assert "20%" in verdict(0.1, ref).meaning


def test_score_says_what_calibration_needs_and_uses_new_reference_scores_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: after 6 real images were scored on the Jobs page the page still said "No
    reference run of this model on real images is in the store"; the 20-image minimum was never
    said. Later reference scores must count on the next rerun (no minute-long cache)."""
    from app_support import score_own_sets, shown_missing

    db = tmp_path / "spai.db"
    use_store(monkeypatch, db)
    url = f"sqlite:///{db}"
    six = [
        "01_rgb_224x224.png",
        "02_rgb_500x300.png",
        "03_rgb_1024x768.png",
        "05_gray_320x256.png",
        "06_rgba_460x470.png",
        "07_photo_640x427.jpg",
    ]
    score_own_sets(url, tmp_path / "own", {"six_reals": ("real", six, ("original",))})
    at = _score_page()
    _upload(at, [("photo.png", PHOTO, "image/png")])
    assert not at.exception
    assert any("needs at least 20 real images scored by this model; 6 so far" in i for i in texts(at, "info"))
    assert shown_missing(at) == []
    score_own_sets(url, tmp_path / "more", {"more_reals": ("real", six * 3, ("original",))})
    at.run()
    assert not at.exception
    assert any("Verdict bands from 24 real reference images" in c for c in texts(at, "caption"))
    assert not any("not calibrated" in i for i in texts(at, "info"))
    # 24 reals measure no 1% threshold: the strict band starts at the lowest rate they can.
    assert at.select_slider(key="score.fpr_strict").value == 0.01  # widget kept from before
    assert any("none at 1% FPR (needs 100 reals)" in c for c in texts(at, "caption"))
    [verdict] = [m for m in texts(at, "markdown") if m.startswith("###")]
    assert "uncalibrated" not in verdict and ":material/" in verdict  # a calibrated verdict


def test_shipped_demo_model_is_calibrated_on_day_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo model's calibration.json (measured on the demo test reals) gives verdict bands
    on an empty store."""
    from app_support import REPO, shown_missing
    from spai import calibration
    from spai.checkpoint import file_sha256

    weights = REPO / "weights" / "demo" / "spai_demo.pth"
    cal = calibration.read_for(weights, file_sha256(weights))
    assert cal is not None and cal.n_real == 54
    use_store(monkeypatch, tmp_path / "spai.db")
    monkeypatch.setenv("SPAI_MODEL_WEIGHTS", str(weights))
    monkeypatch.delenv("SPAI_MODEL_CFG")
    at = _score_page()
    assert at.select_slider(key="score.fpr_strict").value == 0.02  # 54 reals: 2% is the lowest
    _upload(at, [("photo.png", PHOTO, "image/png")])
    assert not at.exception
    assert any(
        "Verdict bands from 54 real reference images" in c
        and "shipped with the model" in c
        and f"{cal.thresholds[0.05]:.3f} at 5% FPR" in c
        for c in texts(at, "caption")
    )
    assert not any("))" in c for c in texts(at, "caption"))  # the source's own brackets
    assert not any("not calibrated" in i for i in texts(at, "info"))
    [verdict] = [m for m in texts(at, "markdown") if m.startswith("###")]
    assert "uncalibrated" not in verdict
    assert shown_missing(at) == []


def test_damaged_calibration_file_is_reported_and_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    model_dir = tmp_path / "model"
    model_dir.mkdir()
    shutil.copy(TINY_WEIGHTS, model_dir / "tiny.pth")
    (model_dir / "calibration.json").write_text("{not json")
    use_store(monkeypatch, tmp_path / "spai.db")
    monkeypatch.setenv("SPAI_MODEL_WEIGHTS", str(model_dir / "tiny.pth"))
    monkeypatch.setenv("SPAI_MODEL_CFG", str(TINY_CFG))
    at = _score_page()
    assert not at.exception
    assert any("calibration.json is not a readable calibration file" in w for w in texts(at, "warning"))
    assert any("not calibrated" in i for i in texts(at, "info"))
