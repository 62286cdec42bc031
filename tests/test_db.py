"""Store tests on a real SQLite file and a real PostgreSQL server."""

from __future__ import annotations

import multiprocessing as mp
import queue
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image as PILImage
from sqlalchemy import func, inspect, select

from db.export import export_predictions
from db.imagesets import register_csv, register_folder
from db.migrate import current_revision
from db.models import Image, ImageSet, Model, Prediction
from db.queries import (
    bulk_insert_predictions,
    get_or_create_condition,
    get_or_create_model,
    get_or_create_run,
    insert_ignore,
    run_predictions,
    score_arrays,
    study_frame,
)
from db.session import get_engine, init_db, session_scope

TABLES = {
    "image_sets",
    "images",
    "conditions",
    "derived_images",
    "models",
    "runs",
    "predictions",
    "jobs",
    "workers",
    "settings",
    "alembic_version",
}


def _png(path: Path, size=(32, 24), color=(200, 10, 10)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.new("RGB", size, color).save(path)


def test_migrations_from_empty(db_url: str) -> None:
    engine = init_db(db_url)
    assert TABLES <= set(inspect(engine).get_table_names())
    assert current_revision(engine) == "0003"
    init_db(db_url)  # idempotent
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000


def test_register_folder_and_csv_report_broken_rows(db_url: str, tmp_path: Path) -> None:
    root = tmp_path / "imgs"
    _png(root / "a.png")
    _png(root / "sub" / "b.png", size=(10, 20))
    (root / "broken.png").write_bytes(b"this is not an image")
    csv = tmp_path / "list.csv"
    csv.write_text(
        "image,class,split\n"
        "a.png,1,test\n"
        "../outside.png,1,test\n"
        "missing.png,1,test\n"
        "broken.png,1,test\n"
        "sub/b.png,1,test\n"
        "sub/b.png,x,test\n"
    )
    _png(tmp_path / "outside.png")  # exists, but outside the root
    with session_scope(db_url) as s:
        rep = register_csv(s, csv, root, name="mine")
    reasons = {p.row: p.reason for p in rep.problems}
    assert set(reasons) == {2, 3, 4, 6}
    assert "escapes the root" in reasons[2]
    assert "not found" in reasons[3]
    assert "unreadable image" in reasons[4]
    assert "class must be 0 or 1" in reasons[6]
    assert rep.added == 3  # a, sub/b and broken (registered with its error)
    with session_scope(db_url) as s:
        rows = {im.relpath: im for im in s.scalars(select(Image))}
        assert rows["sub/b.png"].width == 10 and rows["sub/b.png"].height == 20
        assert rows["a.png"].format == "PNG" and len(rows["a.png"].sha256) == 64
        assert rows["broken.png"].error and rows["broken.png"].width is None
        assert s.scalars(select(ImageSet)).one().kind == "fake"
    with session_scope(db_url) as s:  # again: nothing new, nothing re-hashed
        rep2 = register_csv(s, csv, root, name="mine")
    assert rep2.added == 0 and rep2.already_present == 3
    with session_scope(db_url) as s:
        rep3 = register_folder(s, root, name="folder-set", kind="real")
    assert rep3.added == 3 and len(rep3.problems) == 1  # broken.png, reported and kept


def test_register_rejects_kind_mismatch(db_url: str, tmp_path: Path) -> None:
    _png(tmp_path / "x.png")
    with session_scope(db_url) as s:
        register_folder(s, tmp_path, name="s1", kind="real")
    with pytest.raises(ValueError, match="already exists with kind 'real'"):
        with session_scope(db_url) as s:
            register_folder(s, tmp_path, name="s1", kind="fake")


def _seed_runs(url: str, n_images: int = 50) -> tuple[int, list[int]]:
    """A model, two sets (real/fake) and two conditions with deterministic scores."""
    rng = np.random.default_rng(0)
    with session_scope(url) as s:
        model = get_or_create_model(s, "m", origin="demo")
        run_ids = []
        for kind in ("real", "fake"):
            s.add(ImageSet(name=f"set-{kind}", kind=kind, origin="test"))
            s.flush()
            iset = s.scalars(select(ImageSet).where(ImageSet.name == f"set-{kind}")).one()
            insert_ignore(
                s,
                Image.__table__,
                [{"imageset_id": iset.id, "relpath": f"{i}.png", "has_file": False} for i in range(n_images)],
            )
            ids = list(s.scalars(select(Image.id).where(Image.imageset_id == iset.id)))
            for cond in ("original", "jpeg/q75"):
                get_or_create_condition(s, cond)
                run = get_or_create_run(s, model.id, iset.id, cond)
                run_ids.append(run.id)
                bulk_insert_predictions(
                    s, [{"run_id": run.id, "image_id": iid, "score": float(rng.random())} for iid in ids]
                )
        return model.id, run_ids


def test_bulk_insert_is_idempotent_and_aggregates(db_url: str) -> None:
    model_id, run_ids = _seed_runs(db_url)
    with session_scope(db_url) as s:
        ids = list(s.scalars(select(Image.id).order_by(Image.id).limit(5)))
        again = bulk_insert_predictions(s, [{"run_id": run_ids[0], "image_id": i, "score": 0.5} for i in ids])
        assert again == 0
        assert s.scalar(select(func.count()).select_from(Prediction)) == 200
        arrays = score_arrays(s, run_ids)
        assert sorted(arrays) == sorted(run_ids)
        assert all(len(a) == 50 and a.dtype == np.float64 for a in arrays.values())
        first = list(
            s.scalars(select(Prediction.score).where(Prediction.run_id == run_ids[0]).order_by(Prediction.image_id))
        )
        np.testing.assert_allclose(arrays[run_ids[0]], first)
        frame = study_frame(s, model_id, ["jpeg/q75"])
        one = run_predictions(s, run_ids[0])
    assert len(one) == 50 and list(one["score"]) == list(arrays[run_ids[0]])
    assert one["image"].iloc[0] == "0.png" and one["error"].isna().all()
    assert len(frame) == 100
    assert set(frame["condition"]) == {"jpeg/q75"}
    assert frame.groupby("kind")["label"].unique().to_dict() == {"fake": [1], "real": [0]}


def test_export_csv_and_parquet(db_url: str, tmp_path: Path) -> None:
    _seed_runs(db_url, n_images=10)
    with session_scope(db_url, readonly=True) as s:
        n_csv = export_predictions(s, tmp_path / "out.csv", conditions=["original"])
        n_pq = export_predictions(s, tmp_path / "out.parquet", models=["m"])
        with pytest.raises(ValueError, match="export format"):
            export_predictions(s, tmp_path / "out.xlsx")
    assert n_csv == 20 and n_pq == 40
    csv = pd.read_csv(tmp_path / "out.csv")
    pq = pd.read_parquet(tmp_path / "out.parquet")
    assert list(csv.columns) == list(pq.columns)
    assert {"model", "imageset", "label", "condition", "image", "score"} <= set(csv.columns)
    assert set(csv["condition"]) == {"original"} and len(pq) == 40


def _writer(url: str, worker: int, run_id: int, image_ids: list[int], q: mp.Queue) -> None:
    """One process writing predictions in small batches (shared run: conflicts on purpose)."""
    try:
        from db.queries import bulk_insert_predictions
        from db.session import session_scope

        for start in range(0, len(image_ids), 25):
            with session_scope(url) as s:
                s.scalar(select(func.count()).select_from(Prediction))  # read, then write
                bulk_insert_predictions(
                    s, [{"run_id": run_id, "image_id": i, "score": worker / 10} for i in image_ids[start : start + 25]]
                )
        q.put((worker, "ok"))
    except BaseException as exc:  # reported to the parent, which fails the test
        q.put((worker, f"{type(exc).__name__}: {exc}"))


def test_four_processes_write_sqlite_without_lock_errors(sqlite_url: str) -> None:
    with session_scope(sqlite_url) as s:
        model = get_or_create_model(s, "m", origin="demo")
        iset = ImageSet(name="s", kind="real", origin="test")
        s.add(iset)
        s.flush()
        insert_ignore(
            s, Image.__table__, [{"imageset_id": iset.id, "relpath": f"{i}", "has_file": False} for i in range(400)]
        )
        ids = list(s.scalars(select(Image.id).order_by(Image.id)))
        run_id = get_or_create_run(s, model.id, iset.id, get_or_create_condition(s, "original").id).id
    get_engine(sqlite_url).dispose()
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [
        ctx.Process(target=_writer, args=(sqlite_url, w, run_id, ids[w * 50 :] + ids[: w * 50], q)) for w in range(4)
    ]
    for p in procs:
        p.start()
    results: dict[int, str] = {}
    deadline = time.monotonic() + 600  # generous: four cold interpreters on a loaded 2-core machine
    while len(results) < len(procs) and time.monotonic() < deadline:
        try:
            worker, outcome = q.get(timeout=5)
            results[worker] = outcome
        except queue.Empty:
            if all(p.exitcode is not None for p in procs) and q.empty():
                break  # every writer has ended; a missing report means one died without reporting
    for p in procs:
        p.join(timeout=30)
    exits = {w: p.exitcode for w, p in enumerate(procs)}
    assert results == {w: "ok" for w in range(4)}, f"reports {results}, exit codes {exits}"
    with session_scope(sqlite_url) as s:
        rows = s.execute(select(Prediction.image_id, func.count()).group_by(Prediction.image_id)).all()
    assert len(rows) == 400 and {c for _, c in rows} == {1}


def test_attention_round_trip_and_null(db_url: str) -> None:
    _, run_ids = _seed_runs(db_url, n_images=3)
    with session_scope(db_url) as s:
        ids = list(s.scalars(select(Image.id).order_by(Image.id).limit(2)))
        run = get_or_create_run(
            s, get_or_create_model(s, "m2", origin="demo").id, s.get(Image, ids[0]).imageset_id, "original"
        )
        added = bulk_insert_predictions(
            s,
            [
                {"run_id": run.id, "image_id": ids[0], "score": 0.25, "attention": [0.5, 0.25, 0.25]},
                {"run_id": run.id, "image_id": ids[1], "error": "cannot decode image: x"},
            ],
        )
        assert added == 2
        with pytest.raises(ValueError, match="may only have"):
            bulk_insert_predictions(s, [{"run_id": run.id, "image_id": ids[0], "bogus": 1}])
    with session_scope(db_url) as s:
        got = {p.image_id: p for p in s.scalars(select(Prediction).where(Prediction.run_id == run.id))}
        null_att = s.scalar(select(func.count()).where(Prediction.run_id == run.id, Prediction.attention.is_(None)))
    assert got[ids[0]].attention == [0.5, 0.25, 0.25]
    assert got[ids[1]].score is None and got[ids[1]].error.startswith("cannot decode")
    assert null_att == 1  # SQL NULL, not the JSON text 'null'


def test_migrations_match_the_models(db_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from db.models import Base

    engine = init_db(db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_settings_are_set_replaced_and_cleared(db_url: str) -> None:
    from db.settings import get_setting, set_setting

    init_db(db_url)
    with session_scope(db_url) as s:
        assert get_setting(s, "a.key") is None
        set_setting(s, "a.key", "/weights/x.pth")
    with session_scope(db_url) as s:  # committed: another session sees it
        assert get_setting(s, "a.key") == "/weights/x.pth"
        set_setting(s, "a.key", "/weights/y.pth")
        set_setting(s, "other", "1")
    with session_scope(db_url) as s:
        assert (get_setting(s, "a.key"), get_setting(s, "other")) == ("/weights/y.pth", "1")
        set_setting(s, "a.key", None)
        set_setting(s, "never.set", None)  # clearing a missing key is a no-op
    with session_scope(db_url) as s:
        assert get_setting(s, "a.key") is None and get_setting(s, "other") == "1"


def test_a_model_origin_outside_the_vocabulary_is_refused(sqlite_url: str) -> None:
    """Stored models carry spai.weights' origins only; anything else is refused, naming them,
    and nothing is written."""
    with session_scope(sqlite_url) as s:
        with pytest.raises(ValueError, match="'custom' is not one of official, demo, trained, imported"):
            get_or_create_model(s, "mine", origin="custom")
        assert get_or_create_model(s, "mine", origin="trained").origin == "trained"
    with session_scope(sqlite_url, readonly=True) as s:
        assert [m.origin for m in s.scalars(select(Model))] == ["trained"]
