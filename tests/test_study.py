"""Studies as files: the schema's errors, roger.yaml's five mean AUCs from the imported scores,
and a miniature study end to end (register, derive, infer) with the real tiny SPAI model."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from sqlalchemy import func, select

from db import jobs
from db.models import ImageSet, Job, Prediction, Run
from db.queries import run_predictions
from db.session import REPO_ROOT, dispose_all, session_scope
from robustness.metrics import auc
from robustness.study.deltas import paired_delta
from robustness.study.results import ModelScores
from robustness.study.store import SetScores
from robustness.study.__main__ import main
from robustness.study.report import load_results
from robustness.study.schema import StudyFileError, load_study
from tiny_model import TINY_CFG, TINY_IMAGES, TINY_WEIGHTS

ROGER = REPO_ROOT / "robustness" / "study" / "roger.yaml"
STUDY_MEANS = {
    "original": 0.919,
    "instagram-filter": 0.743,
    "meme": 0.812,
    "screenshot": 0.623,
    "super-resolution/bsrgan-x2": 0.806,
}  # the study's notebook, SPAI rows
ROGER_MEANS = {
    "original": 0.958,
    "instagram-filter": 0.756,
    "meme": 0.906,
    "screenshot": 0.912,
    "super-resolution/bsrgan-x2": 0.958,
}  # the study's notebook, ROGER rows


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
    for sub, names in (
        ("real", ["01_rgb_224x224.png", "04_rgb_97x130.png"]),
        ("fake", ["05_gray_320x256.png", "02_rgb_500x300.png"]),
    ):
        (tmp_path / "pics" / sub).mkdir(parents=True)
        for n in names:
            shutil.copy(TINY_IMAGES / n, tmp_path / "pics" / sub / n)
    shutil.copy(TINY_WEIGHTS, tmp_path / "tiny.pth")
    shutil.copy(TINY_CFG, tmp_path / "tiny.yaml")
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
def test_a_bad_file_gets_one_error_naming_the_key(
    study_dir: Path, capsys, old: str, new: str, key: str, words: str
) -> None:
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
    proc = subprocess.run(
        [sys.executable, "-m", "robustness.study", "run", str(path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
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
    assert (
        main(["run", str(ROGER), "--database-url", url, "--output", str(out), "--worker", "inline", "--no-progress"])
        == 0
    )
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
    assert (
        main(["run", str(ROGER), "--database-url", url, "--output", str(out), "--worker", "inline", "--no-progress"])
        == 0
    )
    with session_scope(url, readonly=True) as s:
        assert s.scalar(select(func.count()).select_from(Job)) == before
    assert capsys.readouterr().out.count("nothing to do (all stored)") == 3


# --- a miniature study end to end -------------------------------------------------------------


def test_mini_study_runs_end_to_end_on_the_tiny_model(
    study_dir: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPAI_DATA_DIR", str(study_dir / "data"))
    extra = study_dir / "more"
    extra.mkdir()
    shutil.copy(TINY_IMAGES / "08_synth_449x450.png", extra / "a.png")
    text = GOOD.replace("image_sets:\n", "image_sets:\n  - {name: more, folder: more, kind: fake}\n")
    (study_dir / "study.yaml").write_text(text)
    out = study_dir / "out"
    args = [
        "run",
        str(study_dir / "study.yaml"),
        "--database-url",
        sqlite_url,
        "--output",
        str(out),
        "--worker",
        "inline",
        "--no-progress",
        "--threads",
        "1",
    ]
    try:
        assert main(args) == 0
        with session_scope(sqlite_url, readonly=True) as s:
            runs = s.scalars(select(Run)).all()
            assert len(runs) == 3 * 2 and {r.status for r in runs} == {"done"}
            assert s.scalar(select(func.count()).select_from(Prediction)) == 5 * 2
            assert {j.kind for j in jobs.list_jobs(s)} == {"import", "make-condition", "infer"}
            assert {j.status for j in jobs.list_jobs(s)} == {"done"}
            scores = {(r.imageset_id, r.condition_id): run_predictions(s, r.id)["score"] for r in runs}
            set_id = {
                n: s.scalar(select(ImageSet.id).where(ImageSet.name == n)) for n in ("pics-real", "pics-fake", "more")
            }
        results = load_results(load_study(study_dir / "study.yaml"), url=sqlite_url)
        assert results.real_sets == ["pics-real"] and results.fake_sets == ["more", "pics-fake"]
        for cond in ("original", "jpeg/q75"):  # the table is the protocol on the stored scores
            real = scores[(set_id["pics-real"], cond)].to_numpy()
            expect = [
                auc([1] * len(f) + [0] * len(real), list(f) + list(real))
                for f in (scores[(set_id[n], cond)].to_numpy() for n in ("more", "pics-fake"))
            ]
            assert results.mean("tiny", "auc", cond) == pytest.approx(sum(expect) / 2, abs=1e-6)
        assert json.loads((out / "results.json").read_text())["real_sets"] == ["pics-real"]
        with session_scope(sqlite_url) as s:
            before = s.scalar(select(func.count()).select_from(Job))
        assert main(args) == 0  # everything stored: nothing is queued again
        with session_scope(sqlite_url, readonly=True) as s:
            assert s.scalar(select(func.count()).select_from(Job)) == before
    finally:
        dispose_all()


# --- paper-ready output -------------------------------------------------------------------


@pytest.fixture(scope="module")
def roger_report(roger_store, tmp_path_factory: pytest.TempPathFactory):
    """Every output format of roger.yaml cut to two conditions, with intervals (few
    replicates: this tests the outputs' structure)."""
    url, out = roger_store
    text = ROGER.read_text().replace("roger-study}", f"{ROGER.parent / 'roger-study'}}}")
    keep = ("original", "screenshot")
    text = "\n".join(
        ln for ln in text.splitlines() if not ln.startswith("  - {id: ") or ln.split()[2].rstrip(",") in keep
    )
    study = tmp_path_factory.mktemp("roger-report") / "roger.yaml"
    study.write_text(text)
    assert (
        main(
            [
                "report",
                str(study),
                "--database-url",
                url,
                "--output",
                str(out),
                "--formats",
                "all",
                "--ci",
                "20",
                "--no-progress",
                "--delta",
                "ROGER (study fused model):SPAI (official weights, study)",
            ]
        )
        == 0
    )
    return out


def _tex_engine() -> str | None:
    return next((e for e in ("pdflatex", "lualatex", "xelatex") if shutil.which(e)), None)


def test_latex_table_compiles_or_has_the_booktabs_structure(roger_report: Path, tmp_path: Path) -> None:
    tex = (roger_report / "table_auc.tex").read_text()
    tables = tex.split(r"\begin{table}")[1:]
    assert len(tables) == 3  # the summary, then one per model
    for t in tables:
        assert t.count(r"\toprule") == t.count(r"\bottomrule") == 1
        spec = re.search(r"\\begin\{tabular\}\{(l r*)\}".replace(" ", ""), t).group(1)
        body = t.split(r"\midrule", 1)[1].split(r"\bottomrule")[0]
        rows = [r for r in body.replace(r"\midrule", "").split(r"\\") if r.strip()]
        assert all(r.count("&") == len(spec) - 1 for r in rows), rows
        assert r"\textbf{" in t and r"{\scriptsize [" in t  # best per column, intervals
    summary, spai = tables[0], tables[1]
    assert "SPAI (official weights, study) & 0.919" in summary and "Screenshot" in summary
    assert r"\textbf{0.958}" in summary.split("ROGER")[1].split(r"\\")[0]
    assert "Mean & 0.919" in spai and r"\caption{" in spai and r"\label{tab:roger-auc-" in spai
    engine = _tex_engine()
    if engine is None:
        return  # no TeX engine installed: the structure above is what was checked
    doc = tmp_path / "doc.tex"
    doc.write_text("\\documentclass{article}\\usepackage{booktabs}\\begin{document}\n" + tex + "\n\\end{document}\n")
    proc = subprocess.run(
        [engine, "-interaction=nonstopmode", "-halt-on-error", doc.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-2000:]


def test_figures_are_valid_svg_pdf_and_png(roger_report: Path) -> None:
    figs = roger_report / "figures"
    stems = sorted({p.stem for p in figs.iterdir()})
    assert len(stems) == 2 * 3  # heatmap, ROC and score distributions per model
    for stem in stems:
        svg = ET.parse(figs / f"{stem}.svg").getroot()
        assert svg.tag == "{http://www.w3.org/2000/svg}svg" and float(svg.get("width").rstrip("pt")) > 100
        pdf = (figs / f"{stem}.pdf").read_bytes()
        assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
        assert re.search(rb"/Type\s*/Page[^s]", pdf) and b"startxref" in pdf
        with PILImage.open(figs / f"{stem}.png") as im:
            im.load()
            assert im.width > 300 and im.height > 200


def test_html_report_is_self_contained(roger_report: Path) -> None:
    page = (roger_report / "report.html").read_text()
    refs = []

    class Refs(HTMLParser):
        def handle_starttag(self, tag, attrs):
            refs.extend((tag, k, v) for k, v in attrs if k in ("src", "href", "srcset", "data"))
            assert tag not in ("script", "link", "iframe", "object", "embed"), tag

    Refs().feed(page)
    assert refs and all(v.startswith("data:image/svg+xml;base64,") for _, _, v in refs)
    assert not re.search(r"url\(|@import|https?://", page.split("<body>")[0])  # the style sheet
    body_without_data = re.sub(r'src="data:[^"]+"', "", page)
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*(https?:)?//", body_without_data)
    for text in (
        "0.919",
        "0.623",
        "roger.yaml",
        "scores: {study: /",
        "sha256",
        "numpy",
        "matplotlib",
        "Bootstrap: 20 replicates, seed 0",
    ):
        assert text in page, text


def test_report_deltas_put_models_side_by_side_with_paired_intervals(roger_report: Path) -> None:
    md = (roger_report / "deltas_auc.md").read_text()
    row = next(r for r in md.splitlines() if r.startswith("| Screenshot | 0.912 | 0.623 |"))
    delta, interval = row.strip("| ").split(" | ")[3:5]
    low, high = (float(x) for x in interval.strip("[]").split(", "))
    assert delta == "+0.289" and 0 < low < 0.289 < high
    assert "SPAI (official weights, study): each condition minus Original" in md
    assert "| Screenshot | 0.623 | 0.919 | -0.296 |" in md
    assert r"$\Delta$" in (roger_report / "deltas_auc.tex").read_text()
    assert "Deltas (paired bootstrap)" in (roger_report / "report.html").read_text()


# --- paired deltas --------------------------------------------------------------------------


def _side(model: str, cond: str, sets: dict[str, tuple[str, np.ndarray, np.ndarray]]):
    return {(cond, name): SetScores(kind, ids, sc.astype(np.float32)) for name, (kind, ids, sc) in sets.items()}


def test_paired_delta_pairs_images_by_id() -> None:
    rng = np.random.default_rng(0)
    ids_f, ids_r = np.arange(100, 160), np.arange(200, 250)
    fake, real = rng.normal(1.0, 1.0, 60), rng.normal(0.0, 1.0, 50)
    base = ModelScores("b", _side("b", "original", {"f": ("fake", ids_f, fake), "r": ("real", ids_r, real)}))
    same = paired_delta(base, "original", base, "original", real_sets=["r"], fake_sets=["f"], n=200)
    assert (same.delta, same.low, same.high, same.images) == (0.0, 0.0, 0.0, 110)
    # b's fakes scored a little higher, listed in another order, one image unscored
    order = rng.permutation(60)[:59]
    better = ModelScores(
        "a", _side("a", "original", {"f": ("fake", ids_f[order], (fake + 0.3)[order]), "r": ("real", ids_r, real)})
    )
    d = paired_delta(better, "original", base, "original", real_sets=["r"], fake_sets=["f"], n=500, seed=1)
    kept = np.sort(order)
    y = [1] * 59 + [0] * 50
    assert d.images == 109 and d.a == pytest.approx(auc(y, np.r_[(fake + 0.3)[kept], real]), abs=1e-6)
    assert d.b == pytest.approx(auc(y, np.r_[fake[kept], real]), abs=1e-6)
    assert 0 < d.low < d.delta < d.high
    # an unpaired interval (independent resamples of each side) is much wider
    unpaired = np.quantile(
        [
            auc(y, np.r_[(fake + 0.3)[kept][i], real[j]]) - auc(y, np.r_[fake[kept][k], real[m]])
            for i, j, k, m in (
                (rng.integers(0, 59, 59), rng.integers(0, 50, 50), rng.integers(0, 59, 59), rng.integers(0, 50, 50))
                for _ in range(300)
            )
        ],
        [0.025, 0.975],
    )
    assert (d.high - d.low) < 0.6 * (unpaired[1] - unpaired[0])
    ap_delta = paired_delta(
        better, "original", base, "original", real_sets=["r"], fake_sets=["f"], metric="ap", n=50, seed=1
    )
    assert ap_delta.low <= ap_delta.delta <= ap_delta.high and ap_delta.delta > 0
