"""Studies as files: the schema's errors, roger.yaml's five mean AUCs from the imported scores,
and a miniature study end to end (register, derive, infer) with the real tiny SPAI model."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from db import jobs
from db.models import ImageSet, Job, Prediction, Run
from db.queries import run_predictions
from db.session import REPO_ROOT, dispose_all, session_scope
from robustness.metrics import auc
from robustness.study.__main__ import main
from robustness.study.report import load_results
from robustness.study.schema import StudyFileError, load_study

TINY = REPO_ROOT / "tests" / "fixtures" / "spai-tiny"
ROGER = REPO_ROOT / "robustness" / "study" / "roger.yaml"
STUDY_MEANS = {"original": 0.919, "instagram-filter": 0.743, "meme": 0.812, "screenshot": 0.623,
               "super-resolution/bsrgan-x2": 0.806}  # the study's notebook, SPAI rows
ROGER_MEANS = {"original": 0.958, "instagram-filter": 0.756, "meme": 0.906, "screenshot": 0.912,
               "super-resolution/bsrgan-x2": 0.958}  # the study's notebook, ROGER rows


# --- the schema -------------------------------------------------------------------------------

GOOD = """
name: mini
image_sets:
  - {name: pics, folder: pics, layout: real-fake}
conditions: [original, {id: jpeg/q75, label: JPEG 75, params: {quality: 75}}]
models:
  - {name: tiny, weights: tiny.pth, config: tiny.yaml}
metrics: [auc, ap]
real_sets: [pics-real]
"""


@pytest.fixture
def study_dir(tmp_path: Path) -> Path:
    """A folder with a valid study file's referenced files (images, weights, config)."""
    for sub, names in (("real", ["01_rgb_224x224.png", "04_rgb_97x130.png"]),
                       ("fake", ["05_gray_320x256.png", "02_rgb_500x300.png"])):
        (tmp_path / "pics" / sub).mkdir(parents=True)
        for n in names:
            shutil.copy(TINY / "images" / n, tmp_path / "pics" / sub / n)
    shutil.copy(TINY / "spai_tiny_seed0.pth", tmp_path / "tiny.pth")
    shutil.copy(TINY / "spai_tiny.yaml", tmp_path / "tiny.yaml")
    (tmp_path / "study.yaml").write_text(GOOD)
    return tmp_path


def test_a_valid_file_parses(study_dir: Path) -> None:
    s = load_study(study_dir / "study.yaml")
    assert s.name == "mini" and s.baseline == "original" and s.metrics == ("auc", "ap")
    assert s.image_sets[0].store_names() == {"pics-real": "real", "pics-fake": "fake"}
    assert s.label("jpeg/q75") == "JPEG 75" and s.models[0].weights == study_dir / "tiny.pth"


BAD = [  # (replace this text of GOOD, by this, the key the error must name, words it must say)
    ("name: mini", "nme: mini", "nme", "unknown key"),
    ("name: mini", "name: ../up", "name", "not a valid name"),
    ("metrics: [auc, ap]", "metrics: [auc, roc]", "metrics[1]", "unknown metric 'roc'"),
    ("tiny.pth", "missing.pth", "models[0].weights", "file not found"),
    ("[original,", "[origenal,", "conditions[0].id", "unknown condition 'origenal'"),
    ("quality: 75", "quality: 60", "conditions[1].params.quality", "registered with quality=75"),
    ("real_sets: [pics-real]", "real_sets: [pics-fake]", "real_sets[0]", "not a declared real"),
    ("layout: real-fake", "layout: real-fake, csv: x.csv", "image_sets[0]", "exactly one of"),
    ("layout: real-fake", "kind: both", "image_sets[0].kind", "'real' or 'fake'"),
    ("metrics: [auc, ap]", "metrics: auc", "metrics", "must be a list"),
    ("metrics: [auc, ap]", "bootstrap: {n: 5}", "bootstrap.n", "at least 10"),
    ("metrics: [auc, ap]", "deltas: [{a: tiny, b: other}]", "deltas[0].b", "not one of the models"),
]


@pytest.mark.parametrize(("old", "new", "key", "words"), BAD, ids=[b[2] for b in BAD])
def test_a_bad_file_gets_one_error_naming_the_key(study_dir: Path, capsys, old: str, new: str,
                                                  key: str, words: str) -> None:
    path = study_dir / "study.yaml"
    path.write_text(GOOD.replace(old, new, 1))
    with pytest.raises(StudyFileError) as err:
        load_study(path)
    assert err.value.key == key and words in str(err.value)
    assert main(["report", str(path), "--no-progress"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: study.yaml: {key}: ")


def test_invalid_yaml_and_the_cli_exit_without_traceback(study_dir: Path) -> None:
    path = study_dir / "study.yaml"
    path.write_text(GOOD + "models: [\n")
    proc = subprocess.run([sys.executable, "-m", "robustness.study", "run", str(path)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("error: study.yaml: study.yaml is not valid YAML at line")


# --- roger.yaml ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def roger_store(tmp_path_factory: pytest.TempPathFactory):
    """The shipped study imported through the job queue by ``run roger.yaml`` (inline worker)."""
    tmp = tmp_path_factory.mktemp("roger")
    url = f"sqlite:///{tmp / 'spai.db'}"
    out = tmp / "out"
    assert main(["run", str(ROGER), "--database-url", url, "--output", str(out),
                 "--worker", "inline", "--no-progress"]) == 0
    yield url, out
    dispose_all()


def test_roger_yaml_reproduces_the_study_means(roger_store) -> None:
    url, out = roger_store
    results = load_results(load_study(ROGER), url=url)
    assert results.real_sets == ["coco", "fodb", "imagenet", "openimages"]
    assert len(results.fake_sets) == 13
    spai, roger = "SPAI (official weights, study)", "ROGER (study fused model)"
    assert {c: round(results.mean(spai, "auc", c), 3) for c in STUDY_MEANS} == STUDY_MEANS
    assert {c: round(results.mean(roger, "auc", c), 3) for c in ROGER_MEANS} == ROGER_MEANS
    doc = json.loads((out / "results.json").read_text())
    assert round(doc["means"][spai]["auc"]["screenshot"], 3) == 0.623
    md = (out / "table_auc.md").read_text()
    assert "| **Mean** | 0.919 | 0.743 | 0.812 | 0.623 | 0.806 |" in md


def test_a_second_run_queues_nothing(roger_store, capsys) -> None:
    url, out = roger_store
    with session_scope(url, readonly=True) as s:
        before = s.scalar(select(func.count()).select_from(Job))
    assert main(["run", str(ROGER), "--database-url", url, "--output", str(out),
                 "--worker", "inline", "--no-progress"]) == 0
    with session_scope(url, readonly=True) as s:
        assert s.scalar(select(func.count()).select_from(Job)) == before
    assert capsys.readouterr().out.count("nothing to do (all stored)") == 3


# --- a miniature study end to end -------------------------------------------------------------


def test_mini_study_runs_end_to_end_on_the_tiny_model(study_dir: Path, sqlite_url: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPAI_DATA_DIR", str(study_dir / "data"))
    extra = study_dir / "more"
    extra.mkdir()
    shutil.copy(TINY / "images" / "08_synth_449x450.png", extra / "a.png")
    text = GOOD.replace("image_sets:\n", "image_sets:\n  - {name: more, folder: more, kind: fake}\n")
    (study_dir / "study.yaml").write_text(text)
    out = study_dir / "out"
    args = ["run", str(study_dir / "study.yaml"), "--database-url", sqlite_url, "--output",
            str(out), "--worker", "inline", "--no-progress", "--threads", "1"]
    try:
        assert main(args) == 0
        with session_scope(sqlite_url, readonly=True) as s:
            runs = s.scalars(select(Run)).all()
            assert len(runs) == 3 * 2 and {r.status for r in runs} == {"done"}
            assert s.scalar(select(func.count()).select_from(Prediction)) == 5 * 2
            assert {j.kind for j in jobs.list_jobs(s)} == {"import", "make-condition", "infer"}
            assert {j.status for j in jobs.list_jobs(s)} == {"done"}
            scores = {(r.imageset_id, r.condition_id): run_predictions(s, r.id)["score"]
                      for r in runs}
            set_id = {n: s.scalar(select(ImageSet.id).where(ImageSet.name == n))
                      for n in ("pics-real", "pics-fake", "more")}
        results = load_results(load_study(study_dir / "study.yaml"), url=sqlite_url)
        assert results.real_sets == ["pics-real"] and results.fake_sets == ["more", "pics-fake"]
        for cond in ("original", "jpeg/q75"):  # the table is the protocol on the stored scores
            real = scores[(set_id["pics-real"], cond)].to_numpy()
            expect = [auc([1] * len(f) + [0] * len(real), list(f) + list(real))
                      for f in (scores[(set_id[n], cond)].to_numpy() for n in ("more", "pics-fake"))]
            assert results.mean("tiny", "auc", cond) == pytest.approx(sum(expect) / 2, abs=1e-6)
        assert json.loads((out / "results.json").read_text())["real_sets"] == ["pics-real"]
        with session_scope(sqlite_url) as s:
            before = s.scalar(select(func.count()).select_from(Job))
        assert main(args) == 0  # everything stored: nothing is queued again
        with session_scope(sqlite_url, readonly=True) as s:
            assert s.scalar(select(func.count()).select_from(Job)) == before
    finally:
        dispose_all()
