"""Image sets page (AppTest): register a folder and a CSV, per-file errors, thumbnails,
derivation jobs run by the real worker."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter
from streamlit.testing.v1 import AppTest

from dashboard import jobqueue
from db.owners import LOCAL
from jobs.worker import JobWorker, WorkerConfig
from db.session import dispose_all, session_scope
from tiny_model import TINY_CFG, TINY_IMAGES, TINY_WEIGHTS

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "dashboard" / "views" / "imagesets.py")


@pytest.fixture
def app_env(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("SPAI_START_WORKER", "0")
    monkeypatch.setenv("SPAI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SPAI_DATA_ROOTS", str(tmp_path))  # the test's folders may be registered
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i, fmt in enumerate(["PNG", "JPEG", "PNG"]):
        arr = rng.integers(0, 255, (40 + 8 * i, 48, 3), dtype=np.uint8)
        Image.fromarray(arr).save(folder / f"im{i}.{fmt.lower()}", fmt)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    yield sqlite_url, folder
    dispose_all()


def _page() -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=60).run()


def _register_folder(
    at: AppTest, folder: Path, name: str, kind: str | None = "fake", *, run_job: bool = True
) -> AppTest:
    at = at.text_input(key="imagesets.folder").input(str(folder)).run()
    at.text_input(key="imagesets.folder_name").input(name)
    if kind is not None:
        at.radio(key="imagesets.folder_kind").set_value(kind)
    at.text_input(key="imagesets.folder_gen").input("test-gen")
    at = at.button(key="imagesets.register_folder").click().run()
    return _run_registration(at) if run_job else at


def _photo_crops(folder: Path, n: int, *, blur: bool = False) -> None:
    folder.mkdir(parents=True)
    photo = Image.open(TINY_IMAGES / "07_photo_640x427.jpg").convert("RGB")
    for i in range(n):
        crop = photo.crop((30 * i, 20 * i, 30 * i + 96, 20 * i + 80))
        (crop.filter(ImageFilter.GaussianBlur(2)) if blur else crop).save(folder / f"p{i}.png")


def _run_registration(at: AppTest) -> AppTest:
    """The page queued a registration job: run it in the real worker, then rerun the page."""
    assert not at.exception
    assert any("Registration job" in i.value for i in at.info)  # queued, shown by the fragment
    assert JobWorker(WorkerConfig(once=True), url=os.environ["DATABASE_URL"]).serve() == 1
    return at.run()


def test_empty_store(app_env) -> None:
    at = _page()
    assert not at.exception
    assert "No image sets yet" in at.info[0].value


def test_register_folder_counts_errors_thumbnails(app_env) -> None:
    url, folder = app_env
    at = _register_folder(_page(), folder, "tiny-fakes")
    assert not at.exception
    assert "4 image(s) added" in at.success[0].value and "1 problem(s)" in at.success[0].value
    problems = at.dataframe[0].value
    assert list(problems["path"]) == ["broken.png"]
    assert "unreadable image" in problems["problem"].iloc[0]
    overview = at.dataframe[1].value
    row = overview[overview["name"] == "tiny-fakes"].iloc[0]
    assert (row["images"], row["errors"], row["kind"]) == (4, 1, "fake")
    assert "JPEG (1)" in row["formats"] and "PNG (2)" in row["formats"]
    assert at.image[0].captions == ["im0.png", "im1.jpeg", "im2.png"]  # thumbnails
    errors = at.dataframe[-1].value
    assert list(errors["relpath"]) == ["broken.png"]


@pytest.mark.parametrize("real,fake", [("Real", "FAKE"), ("0_real", "1_fake"), ("nature", "ai")])
def test_register_folder_labels_from_subfolders(app_env, tmp_path: Path, real: str, fake: str) -> None:
    """Regression: a folder of mixed real and fake images registered entirely under one label."""
    url, _ = app_env
    mixed = tmp_path / "mine"
    _photo_crops(mixed / real, 3)
    _photo_crops(mixed / fake, 2, blur=True)
    Image.new("RGB", (32, 32)).save(mixed / "stray.png")
    at = _page().text_input(key="imagesets.folder").input(str(mixed)).run()
    assert "Labels from subfolders" in at.info[0].value
    assert not at.get("radio")  # no label to choose: the subfolders give it
    at = _register_folder(at, mixed, "", kind=None)  # empty name: the folder's name
    assert not at.exception
    assert "Registered mine-real, mine-fake: 5 image(s) added" in at.success[0].value
    assert list(at.dataframe[0].value["path"]) == ["stray.png"]  # reported, not registered
    overview = at.dataframe[1].value.set_index("name")
    assert overview.loc["mine-real", ["kind", "images"]].tolist() == ["real", 3]
    assert overview.loc["mine-fake", ["kind", "images"]].tolist() == ["fake", 2]
    assert overview.loc["mine-fake", "root"] == str((mixed / fake).resolve())


def test_register_folder_without_layout_needs_a_label(app_env, tmp_path: Path) -> None:
    url, folder = app_env
    at = _page().text_input(key="imagesets.folder").input(str(folder)).run()
    assert "every image in this folder gets the one label" in at.caption[0].value
    assert at.radio(key="imagesets.folder_kind").value is None  # no silent default
    at = at.button(key="imagesets.register_folder").click().run()
    assert "choose the label (real or fake)" in at.error[0].value
    with session_scope(url, readonly=True) as s:
        assert jobqueue.recent(s) == []
    with session_scope(url) as s, pytest.raises(ValueError, match="choose its label"):
        jobqueue.enqueue_register_folder(s, str(folder), name="x", kind=None, actor=LOCAL)


def test_register_bad_inputs_show_messages(app_env, tmp_path: Path) -> None:
    url, folder = app_env
    at = _register_folder(_page(), tmp_path / "nope", "x", run_job=False)
    assert "Registration failed: image folder not found" in at.error[0].value
    at = _page()
    at.text_input(key="imagesets.csv").input(str(tmp_path / "missing.csv"))
    at.text_input(key="imagesets.root").input(str(folder))
    at.text_input(key="imagesets.csv_name").input("c")
    at.button[-1].click().run()
    assert "Registration failed" in at.error[0].value and "missing.csv" in at.error[0].value


def test_register_csv_splits_classes(app_env) -> None:
    url, folder = app_env
    csv = folder.parent / "sets.csv"
    csv.write_text(
        "image,class,split\nim0.png,0,test\nim1.jpeg,1,test\nim2.png,1,train\n../escape.png,1,test\nim2.png,7,test\n"
    )
    at = _page()
    at.text_input(key="imagesets.csv").input(str(csv))
    at.text_input(key="imagesets.root").input(str(folder))
    at.text_input(key="imagesets.csv_name").input("mixed")
    at = _run_registration(at.button[-1].click().run())
    assert not at.exception
    assert "mixed-real, mixed-fake" in at.success[0].value
    problems = at.dataframe[0].value
    assert {"class must be 0 or 1, got '7'"} <= set(problems["problem"])
    assert any("escapes the root" in p for p in problems["problem"])


def test_derive_conditions_job(app_env) -> None:
    url, folder = app_env
    at = _register_folder(_page(), folder, "tiny-fakes")
    at.multiselect(key="imagesets.conditions").set_value(["jpeg/q75"]).run()
    at.button(key="imagesets.derive").click().run()
    assert "Queued job(s)" in at.success[-1].value
    assert JobWorker(WorkerConfig(once=True), url=url).serve() == 1
    with session_scope(url, readonly=True) as s:
        job = jobqueue.recent(s)[0]
    assert job.status == "done" and job.result == {"derived": 3, "derive_errors": 1, "images": 4}
    at = _page()
    overview = at.dataframe[0].value
    assert overview["conditions"].iloc[0] == "jpeg/q75"


def test_score_this_set_one_click(app_env, monkeypatch) -> None:
    """One click on a set queues its scoring under the chosen conditions with the active model
    (registered on the way); the real worker derives the meme files and scores them."""
    url, folder = app_env
    monkeypatch.setenv("SPAI_MODEL_WEIGHTS", str(TINY_WEIGHTS))
    monkeypatch.setenv("SPAI_MODEL_CFG", str(TINY_CFG))
    at = _register_folder(_page(), folder, "tiny-fakes")
    at.multiselect(key="imagesets.score_conditions").set_value(["meme"]).run()
    button = at.button(key="imagesets.score")
    assert button.label == "Score tiny-fakes with spai_tiny_seed0 on 2 condition(s)"
    at = button.click().run()
    assert not at.exception and "Queued job(s) 2, 3" in at.success[-1].value
    assert JobWorker(WorkerConfig(once=True), url=url).serve() == 2
    with session_scope(url, readonly=True) as s:
        views = [v for v in jobqueue.recent(s, statuses=["done"]) if v.kind == "infer"]
        assert sorted(jobqueue.describe(s, views).values()) == [
            "Score tiny-fakes with spai_tiny_seed0 on meme",
            "Score tiny-fakes with spai_tiny_seed0 on the original images",
        ]
    assert {v.result["predictions"] for v in views} == {4}


def test_a_set_imported_without_files_says_so(app_env, tmp_path: Path) -> None:
    """Regression: a set whose scores were imported without the image files (no root) showed
    "root nan" and offered derivation jobs that had no file to derive from."""
    from db.importers import import_csv

    url, folder = app_env
    _register_folder(_page(), folder, "here")  # a root beside a None: pandas makes it nan
    scores = tmp_path / "scores.csv"
    scores.write_text("image,class,split,spai\nfakes/a.png,1,test,0.9\nfakes/b.png,1,test,0.2\n")
    with session_scope(url) as s:
        import_csv(s, scores, model_name="imported", imageset="elsewhere")
    at = _page()
    at.selectbox(key="imagesets.set").set_value("elsewhere").run()
    assert not at.exception
    caption = next(c.value for c in at.caption if "image(s)" in c.value)
    assert caption.startswith("2 image(s), 0 with a file here")
    assert "no folder: its scores were imported without the image files" in caption
    assert "nan" not in caption
    assert any("Nothing to derive from" in c.value for c in at.caption)
    assert not [b for b in at.button if b.key == "imagesets.derive"]
