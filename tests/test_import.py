"""Import of the shipped robustness-study prediction files and of official infer CSVs."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from db.importers import ROGER_STUDY_MODEL, SPAI_STUDY_MODEL, STUDY_DIR, import_csv, import_study
from db.models import Condition, DerivedImage, Image, ImageSet, Model, Prediction, Run
from db.session import REPO_ROOT, session_scope

CONDITIONS = {"original", "instagram-filter", "meme", "screenshot", "super-resolution/bsrgan-x2"}
FAKE = {
    "dalle2",
    "dalle3",
    "firefly",
    "flux",
    "gigagan",
    "glide",
    "mjv5",
    "mjv61",
    "sd13",
    "sd14",
    "sd2",
    "sd3",
    "sdxl",
}
REAL = {"coco", "fodb", "imagenet", "openimages"}
SPAI_DIRS = {
    "original": "inference",
    "instagram-filter": "filter_inference",
    "meme": "meme_inference",
    "screenshot": "ss_inference",
    "super-resolution/bsrgan-x2": "inference_sr",
}


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_import_study_counts_and_idempotence(db_url: str) -> None:
    with session_scope(db_url) as s:
        rep = import_study(s)
    assert rep.images_added == 17_637  # 16,638 evaluation images + 999 RAISE
    assert any("eval_results" in path for path, _ in rep.skipped)  # superseded run, said so
    assert sum("byte-identical" in why for _, why in rep.skipped) == 17
    assert not rep.problems
    with session_scope(db_url) as s:
        assert set(s.scalars(select(Condition.id))) == CONDITIONS
        models = {m.name: m.id for m in s.scalars(select(Model))}
        assert set(models) == {SPAI_STUDY_MODEL, ROGER_STUDY_MODEL}
        sets = {i.name: i.kind for i in s.scalars(select(ImageSet))}
        assert sets == {**{n: "fake" for n in FAKE}, **{n: "real" for n in REAL | {"raise"}}}
        per_run = s.execute(
            select(Model.name, ImageSet.name, Run.condition_id, func.count(Prediction.id))
            .join(Model, Model.id == Run.model_id)
            .join(ImageSet, ImageSet.id == Run.imageset_id)
            .join(Prediction, Prediction.run_id == Run.id)
            .group_by(Model.name, ImageSet.name, Run.condition_id)
        ).all()
        counts = {(m, n, c): k for m, n, c, k in per_run}
        assert s.scalar(select(func.count()).select_from(Image).where(Image.has_file)) == 0
    for cond in CONDITIONS:
        spai_sets = {n for (m, n, c) in counts if m == SPAI_STUDY_MODEL and c == cond}
        roger_sets = {n for (m, n, c) in counts if m == ROGER_STUDY_MODEL and c == cond}
        assert spai_sets == FAKE | REAL | ({"raise"} if cond == "original" else set())
        assert roger_sets == FAKE | REAL
    for (model, name, cond), n in counts.items():
        folder = STUDY_DIR / SPAI_DIRS[cond]
        kind = "fake" if name in FAKE else "real"
        path = folder / ("real" if name == "raise" else "") / f"{kind}_{name}.csv"
        assert n == len(_rows(path)), (model, name, cond)
    assert counts[(SPAI_STUDY_MODEL, "openimages", "super-resolution/bsrgan-x2")] == 997
    assert counts[(SPAI_STUDY_MODEL, "mjv61", "meme")] == 638
    with session_scope(db_url) as s:
        rep2 = import_study(s)
        assert (rep2.images_added, rep2.derived_added, rep2.predictions_added) == (0, 0, 0)
        assert s.scalar(select(func.count()).select_from(Prediction)) == sum(counts.values())


def test_study_pairs_conditions_and_roger_rows_to_the_same_images(db_url: str) -> None:
    with session_scope(db_url) as s:
        import_study(s)
    spai_rows = _rows(STUDY_DIR / "filter_inference" / "real_imagenet.csv")
    roger_rows = _rows(
        STUDY_DIR
        / "combi-model"
        / "eval_splitmlp_data_with_filter"
        / "real_imagenet_test_embeddings_SplitMLP-v1_prediction_results.csv"
    )
    orig_rows = _rows(STUDY_DIR / "inference" / "real_imagenet.csv")
    k = 17
    filtered_path = spai_rows[k]["image"]  # extension rewritten to .jpg by the study
    original_path = next(
        r["image"] for r in orig_rows if Path(r["image"]).with_suffix("") == Path(filtered_path).with_suffix("")
    )
    assert original_path != filtered_path
    with session_scope(db_url) as s:
        image = s.scalars(
            select(Image).join(ImageSet).where(ImageSet.name == "imagenet", Image.relpath == original_path)
        ).one()
        derived = s.scalars(
            select(DerivedImage).where(
                DerivedImage.image_id == image.id, DerivedImage.condition_id == "instagram-filter"
            )
        ).one()
        assert derived.path == filtered_path and not derived.has_file
        scores = dict(
            s.execute(
                select(Model.name, Prediction.score)
                .join(Run, Run.id == Prediction.run_id)
                .join(Model, Model.id == Run.model_id)
                .where(Prediction.image_id == image.id, Run.condition_id == "instagram-filter")
            ).all()
        )
    assert scores[SPAI_STUDY_MODEL] == pytest.approx(float(spai_rows[k]["spai"]))
    assert scores[ROGER_STUDY_MODEL] == pytest.approx(float(roger_rows[k]["spai"]))


def test_import_official_csv_as_run(db_url: str, tmp_path: Path) -> None:
    out = tmp_path / "preds.csv"
    out.write_text(
        "image,class,split,mytag\na/1.png,1,test,0.9\na/2.png,1,test,\nb/1.jpg,0,test,0.1\nb/2.jpg,2,test,0.3\n"
    )
    with session_scope(db_url) as s:
        rep = import_csv(s, out, model_name="my model", condition_id="jpeg/q75", imageset="x")
    assert rep.predictions_added == 3 and len(rep.problems) == 1
    with session_scope(db_url) as s:
        assert {i.name: i.kind for i in s.scalars(select(ImageSet))} == {"x-fake": "fake", "x-real": "real"}
        errs = list(s.scalars(select(Prediction.error).where(Prediction.score.is_(None))))
        assert errs == ["no score in the file"]
    with session_scope(db_url) as s:
        assert import_csv(s, out, model_name="my model", condition_id="jpeg/q75", imageset="x").predictions_added == 0


def test_cli_import_study_then_export(sqlite_url: str, tmp_path: Path) -> None:
    env_cmd = [sys.executable, "-m", "db", "--database-url", sqlite_url]
    first = subprocess.run(env_cmd + ["import-study"], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert "predictions_added: 167373" in first.stdout
    second = subprocess.run(
        env_cmd + ["import-study", str(STUDY_DIR)], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert "predictions_added: 0" in second.stdout
    subprocess.run(
        env_cmd + ["export", str(tmp_path / "meme.csv"), "--condition", "meme", "--model", ROGER_STUDY_MODEL],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
    )
    assert len(_rows(tmp_path / "meme.csv")) == 16_638
