"""Paths stay inside their roots, tested as an attacker would: names with ``../`` and absolute
paths, server folders outside ``SPAI_DATA_ROOTS`` (``/`` included), a symlink to ``/etc`` and
one to a file outside the set (planted before and after registration), and a CSV whose rows
escape their root in every command that reads CSVs."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from dashboard import jobqueue
from db.paths import (
    PathNotAllowed,
    data_roots,
    join_inside,
    require_inside_roots,
    slug,
)
from jobs.files import derived_stem
from jobs.worker import JobWorker, WorkerConfig
from db import jobs
from db.image_lookup import image_by_id
from db.imagesets import register_folder
from db.models import Image, Prediction
from db.session import REPO_ROOT, session_scope
from tiny_model import TINY_CFG, TINY_IMAGES, TINY_WEIGHTS

PAGE = str(REPO_ROOT / "dashboard" / "views" / "imagesets.py")
ESCAPING = ["../secret.png", "{abs}", "link.png", "etc/passwd"]  # CSV rows that leave the root


@pytest.fixture
def hostile(tmp_path: Path) -> tuple[Path, Path]:
    """``root/`` with good.png, link.png -> ../secret.png, etc -> /etc; and a CSV of one good
    row and every escaping row. Returns (root, csv)."""
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(TINY_IMAGES / "02_rgb_500x300.png", root / "good.png")
    shutil.copy(TINY_IMAGES / "04_rgb_97x130.png", tmp_path / "secret.png")
    (root / "link.png").symlink_to(tmp_path / "secret.png")
    (root / "etc").symlink_to("/etc")
    rows = ["good.png"] + [r.format(abs=tmp_path / "secret.png") for r in ESCAPING]
    path = tmp_path / "list.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image", "class", "split", "spai"])
        w.writerows([(r, i % 2, "test", 0.5) for i, r in enumerate(rows)])
    return root, path


# --- names ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, expected",
    [("../../evil", "evil"), ("/etc/cron.d", "etc-cron.d"), ("my run 1", "my-run-1"), (".hidden", "hidden")],
)
def test_names_become_slugs(name: str, expected: str) -> None:
    assert slug(name) == expected


@pytest.mark.parametrize("name", ["..", "/", "   ", "../.."])
def test_a_name_with_nothing_left_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="no letters or digits"):
        slug(name)


def test_server_written_paths_cannot_leave_their_base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPAI_DATA_DIR", str(tmp_path / "data"))
    for rel in ("../x.png", "a/../../x.png", "/etc/passwd"):
        with pytest.raises(PathNotAllowed):
            join_inside(tmp_path, rel)
    stem = derived_stem(7, "../../../evil", "jpeg/q75", "sub/a.png")
    assert stem == tmp_path / "data" / "derived" / "7-evil" / "jpeg__q75" / "sub" / "a"
    assert derived_stem(8, "..", "original", "a.png").parent.parent.name == "8"


# --- allowed roots ----------------------------------------------------------------------------


def test_data_roots_default_and_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPAI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("SPAI_DATA_ROOTS", raising=False)
    assert data_roots() == (
        (tmp_path / "data").resolve(),
        REPO_ROOT / "examples",
        REPO_ROOT / "robustness" / "study",
        REPO_ROOT / "tests" / "fixtures",
    )
    monkeypatch.setenv("SPAI_DATA_ROOTS", os.pathsep.join([str(tmp_path / "a"), "/srv/img"]))
    assert data_roots() == ((tmp_path / "a").resolve(), Path("/srv/img"))
    for outside in ("/", "/etc", str(tmp_path / "a" / ".." / "b")):
        with pytest.raises(PathNotAllowed, match="SPAI_DATA_ROOTS"):
            require_inside_roots(outside)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "etc").symlink_to("/etc")
    with pytest.raises(PathNotAllowed):
        require_inside_roots(tmp_path / "a" / "etc")
    assert require_inside_roots(tmp_path / "a" / "x") == (tmp_path / "a" / "x").resolve()


@pytest.mark.parametrize("folder", ["/", "/etc", "{tmp}/outside", "{tmp}/data/../outside"])
def test_the_page_registers_no_folder_outside_the_roots(
    page_store, folder: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, tmp = page_store
    monkeypatch.delenv("SPAI_DATA_ROOTS", raising=False)
    (tmp / "outside").mkdir(exist_ok=True)
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at = at.text_input(key="imagesets.folder").input(folder.format(tmp=tmp)).run()
    assert any("outside the folders this server allows" in e.value for e in at.error)
    at.radio(key="imagesets.folder_kind").set_value("real")
    at.button(key="imagesets.register_folder").click().run()
    at.text_input(key="imagesets.csv").input("/etc/passwd")
    at.text_input(key="imagesets.root").input("/etc")
    at.text_input(key="imagesets.csv_name").input("x")
    at.button[-1].click().run()  # Register CSV (the last button while no set exists)
    assert not at.exception
    assert any("Registration failed: CSV file '/etc/passwd' is outside" in e.value for e in at.error)
    with session_scope(url, readonly=True) as s:
        assert jobqueue.recent(s) == []  # nothing was queued


# --- symlinks ---------------------------------------------------------------------------------


def _serve_all(url: str) -> None:
    JobWorker(WorkerConfig(once=True, heartbeat_seconds=0.5), url=url).serve()


def test_symlinks_out_of_a_set_are_refused_at_registration_and_at_read_time(
    sqlite_url: str, hostile: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPAI_DATA_DIR", str(tmp_path / "data"))
    root, _ = hostile
    shutil.copy(TINY_IMAGES / "01_rgb_224x224.png", root / "later.png")
    with session_scope(sqlite_url) as s:
        rep = register_folder(s, root, name="hostile", kind="real")
        relpaths = set(s.scalars(select(Image.relpath)))
    assert relpaths == {"good.png", "later.png"}  # nothing under etc/, no link.png
    assert [(p.path, "escapes" in p.reason) for p in rep.problems] == [("link.png", True)]
    (root / "later.png").unlink()
    (root / "later.png").symlink_to("/etc/passwd")  # planted after registration
    with session_scope(sqlite_url) as s:
        set_id = rep.imageset_ids["hostile"]
        model_id = jobqueue.register_model(s, TINY_WEIGHTS, name="tiny", cfg=TINY_CFG)
        jobqueue.enqueue_infer(s, model_id=model_id, imageset_id=set_id, device="cpu")
        jobqueue.enqueue_make_condition(s, imageset_id=set_id, condition_id="jpeg/q75")
        later = s.scalars(select(Image.id).where(Image.relpath == "later.png")).one()
    _serve_all(sqlite_url)
    with session_scope(sqlite_url, readonly=True) as s:
        assert {j.status for j in jobs.list_jobs(s)} == {"done"}
        preds = dict(
            s.execute(select(Image.relpath, Prediction.error).join(Prediction, Prediction.image_id == Image.id)).all()
        )
        with pytest.raises(PermissionError, match="escapes"):
            image_by_id(s, later)
    assert preds["good.png"] is None and "escapes" in preds["later.png"]
    assert not list((tmp_path / "data").rglob("later*"))  # no derived copy of /etc/passwd


# --- CSV rows escaping their root, in every command that reads CSVs ---------------------------


def _escaped(messages: list[str]) -> int:
    return sum("escapes" in m or "must be relative to the root" in m for m in messages)


def test_spai_infer_and_test_refuse_escaping_rows(hostile: tuple[Path, Path], tmp_path: Path, capsys) -> None:
    from spai.__main__ import main as spai_main

    root, listing = hostile
    out = tmp_path / "out"
    assert (
        spai_main(
            [
                "infer",
                "--input",
                str(listing),
                "--input-csv-root-dir",
                str(root),
                "--model",
                str(TINY_WEIGHTS),
                "--cfg",
                str(TINY_CFG),
                "--output",
                str(out),
            ]
        )
        == 0
    )
    rows = list(csv.DictReader((out / "list.csv").open()))
    assert [bool(r["spai"]) for r in rows] == [True, False, False, False, False]
    assert _escaped([r["error"] for r in rows]) == 4
    assert (
        spai_main(
            [
                "test",
                "--test-csv",
                str(listing),
                "--test-csv-root-dir",
                str(root),
                "--model",
                str(TINY_WEIGHTS),
                "--cfg",
                str(TINY_CFG),
                "--output",
                str(out),
            ]
        )
        == 0
    )
    [metrics] = json.loads((out / "spai_test_metrics.json").read_text())
    assert metrics["scored"] == 1 and metrics["failed"] == 4


def test_robustness_apply_refuses_escaping_rows(hostile: tuple[Path, Path], tmp_path: Path, capsys) -> None:
    from robustness.__main__ import main as robustness_main

    root, listing = hostile
    out = tmp_path / "derived"
    assert (
        robustness_main(
            [
                "apply",
                "--condition",
                "jpeg/q75",
                "--input",
                str(listing),
                "--input-csv-root-dir",
                str(root),
                "--output",
                str(out),
                "--no-progress",
            ]
        )
        == 1
    )
    errors = json.loads((out / "list.params.json").read_text())["errors"]
    assert _escaped([e["error"] for e in errors]) == 4
    assert [p.name for p in out.rglob("*.jpg")] == ["good.jpg"]


def test_db_register_csv_and_import_csv_refuse_escaping_rows(
    sqlite_url: str, hostile: tuple[Path, Path], capsys
) -> None:
    from db.__main__ import main as db_main

    root, listing = hostile
    assert (
        db_main(["--database-url", sqlite_url, "register-csv", str(listing), "--root", str(root), "--name", "reg"]) == 0
    )
    out = capsys.readouterr().out
    assert "added: 1" in out and _escaped(out.splitlines()) == 4
    assert (
        db_main(
            [
                "--database-url",
                sqlite_url,
                "import-csv",
                str(listing),
                "--model",
                "m",
                "--imageset",
                "imp",
                "--root",
                str(root),
            ]
        )
        == 0
    )
    assert _escaped(capsys.readouterr().out.splitlines()) == 4
    with session_scope(sqlite_url, readonly=True) as s:
        files = set(s.scalars(select(Image.relpath).where(Image.has_file.is_(True))))
    assert files == {"good.png"}  # no escaping row points at a file


def test_spai_train_refuses_an_escaping_row(hostile: tuple[Path, Path], tmp_path: Path, capsys) -> None:
    from spai.__main__ import main as spai_main
    from spai.training import read_csv_samples

    root, listing = hostile
    with pytest.raises(ValueError, match=r"list\.csv:3: path escapes"):
        read_csv_samples(listing, root)
    rc = spai_main(
        [
            "train",
            "--cfg",
            str(TINY_CFG),
            "--data-path",
            str(listing),
            "--csv-root-dir",
            str(root),
            "--output",
            str(tmp_path / "runs"),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "list.csv:3: path escapes" in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").rglob("*.pth"))
