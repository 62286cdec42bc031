"""A 30,000 x 30,000 PNG bomb (110 KB on disk) everywhere an image is decoded: refused from its
header by the one capped decoder, one error row in registration, derivation and inference (the
job itself finishes), skipped in training, an error message on the Score and Inspect pages."""

from __future__ import annotations

import csv
import re
import io
import shutil
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from app_support import new_app, texts, use_store
from attack_support import png_bomb
from dashboard import jobqueue
from jobs.worker import JobWorker, WorkerConfig
from db import jobs
from db.imagesets import inspect_image
from db.models import DerivedImage, Image as ImageRow, Prediction
from db.owners import LOCAL
from db.session import session_scope
from spai.__main__ import main as spai_main
from core.imageio import ImageLoadError, open_image, open_rgb, thumbnail
from core.limits import DEFAULT_MAX_PIXELS
from tiny_model import TINY_CFG, TINY_IMAGES, TINY_WEIGHTS

TOO_LARGE = "image too large: Image size (900000000 pixels)"  # refused from the header


@pytest.fixture
def bomb(tmp_path: Path) -> Path:
    path = tmp_path / "bomb.png"
    path.write_bytes(png_bomb())
    return path


def test_pillow_guard_stays_on_after_every_module_is_imported() -> None:
    import jobs.worker  # noqa: F401
    import robustness.apply  # noqa: F401
    import spai.detector  # noqa: F401
    import spai.training  # noqa: F401

    assert Image.MAX_IMAGE_PIXELS == DEFAULT_MAX_PIXELS
    with pytest.raises(Image.DecompressionBombError):  # Pillow itself, without our decoder
        Image.open(io.BytesIO(png_bomb()))


def test_the_capped_decoder_refuses_the_bomb_from_its_header(bomb: Path) -> None:
    for source in (bomb, png_bomb()):
        for decode in (open_image, open_rgb, thumbnail):
            with pytest.raises(ImageLoadError, match=re.escape(TOO_LARGE)):
                decode(source)
    with pytest.raises(ImageLoadError, match="exceeds the cap of 1,000"):
        open_rgb(TINY_IMAGES / "02_rgb_500x300.png", 1_000)
    facts = inspect_image(bomb)
    assert facts.error and TOO_LARGE in facts.error and facts.sha256


def _run_next_job(url: str) -> jobs.JobView:
    with session_scope(url, readonly=True) as s:
        queued = [j.id for j in jobs.list_jobs(s, statuses=["queued"])]
    assert JobWorker(WorkerConfig(once=True, heartbeat_seconds=0.5), url=url).serve() == len(queued)
    with session_scope(url, readonly=True) as s:
        return jobs.get_job(s, queued[-1])


def test_a_bomb_is_one_error_row_in_registration_derivation_and_inference(
    sqlite_url: str, tmp_path: Path, bomb: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPAI_DATA_DIR", str(tmp_path / "data"))
    folder = tmp_path / "set"
    folder.mkdir()
    shutil.move(bomb, folder / "bomb.png")
    shutil.copy(TINY_IMAGES / "02_rgb_500x300.png", folder / "good.png")
    shutil.copy(TINY_IMAGES / "04_rgb_97x130.png", folder / "late.png")
    with session_scope(sqlite_url) as s:
        jobqueue.enqueue_register_folder(s, str(folder), name="bombs", kind="fake", actor=LOCAL)
    reg = _run_next_job(sqlite_url)
    assert reg.status == "done", reg.traceback
    assert [p["path"] for p in reg.result["problems"]] == ["bomb.png"]
    assert TOO_LARGE in reg.result["problems"][0]["problem"] and reg.result["added"] == 3
    (folder / "late.png").write_bytes(png_bomb())  # swapped after registration
    with session_scope(sqlite_url) as s:
        set_id = reg.result["imageset_ids"]["bombs"]
        model_id = jobqueue.register_model(s, TINY_WEIGHTS, name="tiny", cfg=TINY_CFG)
        jobqueue.enqueue_infer(s, model_id=model_id, imageset_id=set_id, device="cpu")
        jobqueue.enqueue_infer(s, model_id=model_id, imageset_id=set_id, device="cpu", condition_id="jpeg/q75")
    infer = _run_next_job(sqlite_url)
    assert infer.status == "done", infer.traceback
    with session_scope(sqlite_url, readonly=True) as s:
        rows = s.execute(
            select(ImageRow.relpath, Prediction.score, Prediction.error).join(
                Prediction, Prediction.image_id == ImageRow.id
            )
        ).all()
        derived = dict(
            s.execute(
                select(ImageRow.relpath, DerivedImage.error).join(DerivedImage, DerivedImage.image_id == ImageRow.id)
            ).all()
        )
    by_file: dict[str, list] = {}
    for rel, score, err in rows:
        by_file.setdefault(rel, []).append((score, err))
    assert len(rows) == 6  # three images under two conditions, one row each
    for rel in ("bomb.png", "late.png"):
        assert all(score is None and TOO_LARGE in err for score, err in by_file[rel]), by_file
    assert all(score is not None and err is None for score, err in by_file["good.png"])
    assert TOO_LARGE in derived["late.png"] and TOO_LARGE in derived["bomb.png"]
    assert derived["good.png"] is None


def test_cli_infer_and_training_skip_the_bomb_with_the_reason(tmp_path: Path, bomb: Path) -> None:
    from spai.detector import Detector
    from spai.training import Sample, evaluate

    shutil.copy(TINY_IMAGES / "02_rgb_500x300.png", tmp_path / "good.png")
    assert (
        spai_main(
            [
                "infer",
                "--input",
                str(tmp_path),
                "--model",
                str(TINY_WEIGHTS),
                "--cfg",
                str(TINY_CFG),
                "--output",
                str(tmp_path / "out"),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    [out_csv] = (tmp_path / "out").glob("*.csv")
    rows = {Path(r["image"]).name: r for r in csv.DictReader(out_csv.open())}
    assert TOO_LARGE in rows["bomb.png"]["error"] and rows["good.png"]["spai"]
    model = Detector.load(TINY_WEIGHTS, cfg=TINY_CFG, device="cpu").model
    metrics, skipped = evaluate(
        model, [Sample(bomb, 1, "val"), Sample(tmp_path / "good.png", 0, "val")], model.cls_head.head[0].weight.device
    )
    assert metrics["n"] == 1 and TOO_LARGE in skipped[str(bomb)]


@pytest.mark.parametrize("page, uploader", [("score", "score.uploads"), ("inspect", "inspect.upload")])
def test_a_bomb_upload_is_an_error_message_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, page: str, uploader: str
) -> None:
    use_store(monkeypatch, tmp_path / "spai.db")
    at = new_app()
    at.switch_page(f"views/{page}.py")
    at.run()
    assert not at.exception
    upload = ("bomb.png", png_bomb(), "image/png")
    at.file_uploader(key=uploader).set_value([upload] if page == "score" else upload)
    at.run()
    assert not at.exception
    assert any(TOO_LARGE in e for e in texts(at, "error")), texts(at, "error")
