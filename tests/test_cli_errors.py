"""Every CLI turns a user's mistake into one line naming the file, row or value, exit status 2.

Each bad input of issue 14 has its own case; the silent successes it lists are errors now.
Cases call each CLI's ``main(argv)`` in-process (stderr captured); one subprocess per CLI
checks that ``python -m <cli>`` goes through the same path.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from db.__main__ import main as db_main
from db.session import REPO_ROOT
from robustness.__main__ import main as robustness_main
from robustness.evaluate import main as evaluate_main
from spai.__main__ import main as spai_main
from core.cli_errors import EXIT_USER_ERROR
from tiny_model import TINY_CFG, TINY_IMAGES, TINY_WEIGHTS

LONGEST_MESSAGE = 400  # an unknown id names a few close ids, not the 2,130-character list


def _worker_main(argv: list[str]) -> int:
    from jobs.worker import main

    return main(argv)


def _one_error_line(capsys: pytest.CaptureFixture[str], rc: int, *needles: str) -> str:
    """Assert exit 2 and exactly one stderr line starting 'error:' holding every needle."""
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == EXIT_USER_ERROR, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert len(lines[0]) < LONGEST_MESSAGE, lines[0]
    return lines[0]


@pytest.fixture
def scored_csv(tmp_path: Path) -> Path:
    """A small infer output CSV: two real, one fake image, scores in column spai."""
    path = tmp_path / "scored.csv"
    path.write_text("image,class,split,spai\na.png,0,test,0.1\nb.png,0,test,0.2\nc.png,1,test,0.9\n")
    return path


# --- python -m spai ---------------------------------------------------------------------------


def test_spai_test_csv_without_image_column(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("file,label\nx.png,1\n")
    rc = spai_main(["test", "--test-csv", str(bad), "--output", str(tmp_path / "o")])
    _one_error_line(capsys, rc, str(bad), "'image' column")


def test_spai_test_csv_that_is_not_text(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "binary.csv"
    bad.write_bytes((TINY_IMAGES / "01_rgb_224x224.png").read_bytes())
    rc = spai_main(["test", "--test-csv", str(bad), "--output", str(tmp_path / "o")])
    _one_error_line(capsys, rc, str(bad), "UTF-8 CSV")


def test_spai_test_bad_class_value(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "labels.csv"
    bad.write_text("image,class,split\n01_rgb_224x224.png,0,test\n02_rgb_500x300.png,fake,test\n")
    rc = spai_main(
        ["test", "--test-csv", str(bad), "--test-csv-root-dir", str(TINY_IMAGES), "--output", str(tmp_path / "o")]
    )
    _one_error_line(capsys, rc, str(bad), "row 2", "'fake'")
    assert not (tmp_path / "o").exists()  # refused before any model was loaded


def test_spai_test_csv_without_class_column(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "nolabels.csv"
    bad.write_text("image,split\n01_rgb_224x224.png,test\n")
    rc = spai_main(["test", "--test-csv", str(bad), "--output", str(tmp_path / "o")])
    _one_error_line(capsys, rc, str(bad), "'class' column")


def test_spai_infer_missing_model_file(tmp_path: Path, capsys) -> None:
    rc = spai_main(
        ["infer", "--input", str(TINY_IMAGES), "--model", str(tmp_path / "nope.pth"), "--output", str(tmp_path / "o")]
    )
    _one_error_line(capsys, rc, "nope.pth")


def test_spai_unknown_option(capsys) -> None:
    rc = spai_main(["infer", "--inptu", "x"])
    _one_error_line(capsys, rc, "--inptu")


# --- python -m robustness ---------------------------------------------------------------------


def test_robustness_apply_csv_missing_columns(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "list.csv"
    bad.write_text("path\n01_rgb_224x224.png\n")
    rc = robustness_main(
        ["apply", "--condition", "jpeg/q75", "--input", str(bad), "--output", str(tmp_path / "o"), "--no-progress"]
    )
    _one_error_line(capsys, rc, str(bad), "missing column(s)", "'class'", "'image'")


def test_robustness_unknown_condition_suggests_close_ids(tmp_path: Path, capsys) -> None:
    rc = robustness_main(
        ["apply", "--condition", "jpeg/q7", "--input", str(TINY_IMAGES), "--output", str(tmp_path / "o")]
    )
    line = _one_error_line(capsys, rc, "'jpeg/q7'", "did you mean", "jpeg/q75", "python -m robustness list")
    assert "instagram/" not in line  # not the whole list


def test_robustness_apply_missing_input(tmp_path: Path, capsys) -> None:
    rc = robustness_main(
        ["apply", "--condition", "jpeg/q75", "--input", str(tmp_path / "no"), "--output", str(tmp_path / "o")]
    )
    _one_error_line(capsys, rc, str(tmp_path / "no"))


# --- python -m robustness.evaluate ------------------------------------------------------------


def test_evaluate_missing_folder(tmp_path: Path, capsys) -> None:
    rc = evaluate_main(["--input_dir", str(tmp_path / "none")])
    _one_error_line(capsys, rc, str(tmp_path / "none"))


def test_evaluate_unknown_metric(tmp_path: Path, capsys) -> None:
    rc = evaluate_main(["--metric", "acu", "--input_dir", str(tmp_path)])
    _one_error_line(capsys, rc, "'acu'", "auc")


# --- python -m db -----------------------------------------------------------------------------


def test_db_import_study_missing_folder(sqlite_url: str, tmp_path: Path, capsys) -> None:
    rc = db_main(["--database-url", sqlite_url, "import-study", str(tmp_path / "missing")])
    _one_error_line(capsys, rc, str(tmp_path / "missing"), "not found")


def test_db_import_study_folder_that_is_not_a_study(sqlite_url: str, tmp_path: Path, capsys) -> None:
    """Was a silent success ("runs: 0", exit 0)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.csv").write_text("image,class\n")
    rc = db_main(["--database-url", sqlite_url, "import-study", str(folder)])
    _one_error_line(capsys, rc, str(folder), "not a study folder", "inference/")


def test_db_import_csv_missing_file(sqlite_url: str, tmp_path: Path, capsys) -> None:
    rc = db_main(["--database-url", sqlite_url, "import-csv", str(tmp_path / "x.csv"), "--model", "m"])
    _one_error_line(capsys, rc, str(tmp_path / "x.csv"), "not found")


def test_db_import_csv_wrong_columns(sqlite_url: str, tmp_path: Path, capsys) -> None:
    bad = tmp_path / "cols.csv"
    bad.write_text("image,label,score,other\na.png,1,0.5,x\n")
    rc = db_main(["--database-url", sqlite_url, "import-csv", str(bad), "--model", "m"])
    _one_error_line(capsys, rc, str(bad), "score column")


def test_db_import_csv_misspelt_condition(sqlite_url: str, scored_csv: Path, capsys) -> None:
    """Was a silent success that created the misspelt condition."""
    rc = db_main(
        ["--database-url", sqlite_url, "import-csv", str(scored_csv), "--model", "m", "--condition", "instagram_filtre"]
    )
    _one_error_line(capsys, rc, "'instagram_filtre'", "did you mean", "instagram-filter", "--new-condition")
    rc = db_main(
        [
            "--database-url",
            sqlite_url,
            "import-csv",
            str(scored_csv),
            "--model",
            "m",
            "--condition",
            "my-phone-camera",
            "--new-condition",
        ]
    )
    assert rc == 0, capsys.readouterr().err


def test_db_export_unknown_format(sqlite_url: str, tmp_path: Path, capsys) -> None:
    rc = db_main(["--database-url", sqlite_url, "export", str(tmp_path / "x.xlsx")])
    _one_error_line(capsys, rc, "'xlsx'", "csv", "parquet")
    assert not (tmp_path / "x.xlsx").exists()


@pytest.mark.parametrize(
    "flag,value,expected",
    [
        ("--condition", "orignal", "original"),
        ("--model", "my modle", "my model"),
        ("--imageset", "scoredd", "scored"),
    ],
)
def test_db_export_unknown_filter_value(
    sqlite_url: str, scored_csv: Path, tmp_path: Path, capsys, flag: str, value: str, expected: str
) -> None:
    """Was a silent success writing 0 rows."""
    assert db_main(["--database-url", sqlite_url, "import-csv", str(scored_csv), "--model", "my model"]) == 0
    capsys.readouterr()
    out = tmp_path / "out.csv"
    rc = db_main(["--database-url", sqlite_url, "export", str(out), flag, value])
    _one_error_line(capsys, rc, repr(value), expected)
    assert not out.exists()


def test_db_migrate_sqlite_in_missing_folder(tmp_path: Path, capsys) -> None:
    """Was: the folder was created (at the file-system root for sqlite:////x/y.db)."""
    folder = tmp_path / "absent" / "deeper"
    rc = db_main(["--database-url", f"sqlite:///{folder / 'spai.db'}", "migrate"])
    _one_error_line(capsys, rc, str(folder), "does not exist")
    assert not (tmp_path / "absent").exists()


def test_db_unparsable_url(capsys) -> None:
    rc = db_main(["--database-url", "not a url", "migrate"])
    _one_error_line(capsys, rc, "'not a url'", "not a database URL")


# --- python -m jobs.worker --------------------------------------------------------------------


def test_worker_bad_database_url(capsys) -> None:
    rc = _worker_main(["--once", "--database-url", "postgresql+psycopg://nobody@127.0.0.1:1/x"])
    _one_error_line(capsys, rc, "cannot open the database", "127.0.0.1:1")


def test_worker_unknown_kind(sqlite_url: str, capsys) -> None:
    """Was: the worker idled forever."""
    rc = _worker_main(["--once", "--database-url", sqlite_url, "--kinds", "infer,infre"])
    _one_error_line(capsys, rc, "'infre'", "infer", "make-condition")


def test_worker_stale_limit_below_three_heartbeats(sqlite_url: str, capsys) -> None:
    rc = _worker_main(["--once", "--database-url", sqlite_url, "--heartbeat-seconds", "2", "--stale-after", "5"])
    _one_error_line(capsys, rc, "--stale-after", "3 x --heartbeat-seconds")


def test_worker_non_positive_heartbeat(sqlite_url: str, capsys) -> None:
    rc = _worker_main(["--once", "--database-url", sqlite_url, "--heartbeat-seconds", "0"])
    _one_error_line(capsys, rc, "--heartbeat-seconds must be positive")


# --- the real entry points --------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["spai", "test", "--test-csv", "{bad}"], "'image' column"),
        (["db", "--database-url", "sqlite:///{tmp}/absent/x.db", "migrate"], "does not exist"),
        (
            ["robustness", "apply", "--condition", "jpeg/q75", "--input", "{bad}", "--output", "{tmp}/o"],
            "missing column(s)",
        ),
        (["robustness.evaluate", "--input_dir", "{tmp}/none"], "not found"),
        (["jobs.worker", "--once", "--database-url", "nonsense"], "not a database URL"),
        (["dashboard.worker", "--once", "--database-url", "nonsense"], "not a database URL"),  # alias
    ],
)
def test_python_dash_m_exits_2_with_one_line(tmp_path: Path, argv: list[str], needle: str) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("path\nx.png\n")
    args = [a.format(bad=bad, tmp=tmp_path) for a in argv]
    res = subprocess.run([sys.executable, "-m", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == EXIT_USER_ERROR, res.stderr
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in res.stderr, res.stderr


@pytest.mark.parametrize("module", ["jobs.worker", "dashboard.worker"])
def test_the_worker_process_serves_every_job_kind(tmp_path: Path, module: str) -> None:
    """Regression (found on the dashboard): started as ``python -m dashboard.worker``, the
    worker ran as ``__main__`` while the training module registered 'train' in a second copy
    of it, so train jobs stayed queued forever. ``--kinds`` names every built-in kind: the
    process refuses a kind it cannot serve."""
    import jobs.worker  # noqa: F401  (registers the built-in kinds in this process)
    from jobs.registry import KINDS

    assert "train" in KINDS
    url = f"sqlite:///{tmp_path / 'w.db'}"
    res = subprocess.run(
        [sys.executable, "-m", module, "--once", "--database-url", url, "--kinds", ",".join(sorted(KINDS))],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert "exiting after 0 job(s)" in res.stdout


# --- python -m spai without --model (issue 12, point 7) ---------------------------------------


def _two_images(tmp_path: Path) -> Path:
    folder = tmp_path / "imgs"
    folder.mkdir()
    for name in ("01_rgb_224x224.png", "04_rgb_97x130.png"):
        (folder / name).write_bytes((TINY_IMAGES / name).read_bytes())
    return folder


def test_spai_infer_default_model_is_the_demo_model(tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    import spai.weights

    monkeypatch.setattr(spai.weights, "OFFICIAL_WEIGHTS", tmp_path / "absent" / "spai.pth")
    assert spai.weights.DEMO_WEIGHTS.is_file()  # shipped in weights/demo
    out = tmp_path / "out"
    rc = spai_main(["infer", "--input", str(_two_images(tmp_path)), "--output", str(out), "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert f"DEMO model: {spai.weights.DEMO_WEIGHTS}" in err
    rows = (out / "imgs.csv").read_text().splitlines()
    assert len(rows) == 3 and all(r.split(",")[3] for r in rows[1:]), rows  # both scored


def test_spai_infer_default_model_prefers_official_weights(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    import spai.weights

    official = tmp_path / "weights" / "spai.pth"
    official.parent.mkdir()
    official.write_bytes((TINY_WEIGHTS).read_bytes())
    monkeypatch.setattr(spai.weights, "OFFICIAL_WEIGHTS", official)
    rc = spai_main(
        ["infer", "--input", str(_two_images(tmp_path)), "--output", str(tmp_path / "out"), "--cfg", str(TINY_CFG)]
    )
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "DEMO model" not in err and f"model: {official}" in err


def test_spai_infer_without_any_model_says_what_to_pass(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    import spai.weights

    monkeypatch.setattr(spai.weights, "OFFICIAL_WEIGHTS", tmp_path / "absent" / "spai.pth")
    monkeypatch.setattr(spai.weights, "DEMO_WEIGHTS", tmp_path / "absent" / "spai_demo.pth")
    rc = spai_main(["infer", "--input", str(TINY_IMAGES), "--output", str(tmp_path / "out")])
    _one_error_line(capsys, rc, "no model", "pass --model PATH", "weights/spai.pth")
