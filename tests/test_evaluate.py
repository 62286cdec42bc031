"""The study protocol (robustness.evaluate) against an independent sklearn computation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from robustness import evaluate as E

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "robustness" / "study" / "roger-study"
MINI = Path(__file__).parent / "fixtures" / "study" / "mini"
COMBI = Path(__file__).parent / "fixtures" / "study" / "combi"
# Folder -> (our name, mean AUC the study's notebook printed, rounded to 3 decimals).
CONDITIONS = {
    "inference": ("original", 0.919),
    "meme_inference": ("meme", 0.812),
    "ss_inference": ("screenshot", 0.623),
    "filter_inference": ("instagram_filter", 0.743),
    "inference_sr": ("super_resolution", 0.806),
}


def _independent_mean(folder: Path, score_fn) -> float:
    """The protocol written out plainly with pandas + sklearn (float32 scores, as the study)."""
    fakes = sorted(folder.glob("fake*.csv"))
    reals = sorted(folder.glob("real*.csv"))
    per_fake = []
    for f in fakes:
        fs = pd.read_csv(f)["spai"].to_numpy().astype(np.float32)
        values = []
        for r in reals:
            rs = pd.read_csv(r)["spai"].to_numpy().astype(np.float32)
            y = np.r_[np.ones(len(fs)), np.zeros(len(rs))]
            values.append(score_fn(y, np.r_[fs, rs]))
        per_fake.append(np.mean(values))
    return float(np.mean(per_fake))


@pytest.mark.parametrize("folder", sorted(CONDITIONS))
def test_study_condition_means_match_independent_auc(folder):
    path = STUDY / folder
    st = E.study_table(E.load_prediction_dir(path), metric="auc")
    assert st.real_sets == ["coco", "fodb", "imagenet", "openimages"]  # RAISE is never scored
    assert len(st.table) == 13
    expected = _independent_mean(path, roc_auc_score)
    assert st.mean == pytest.approx(expected, abs=1e-12)
    assert st.mean == pytest.approx(CONDITIONS[folder][1], abs=6e-4)  # the notebook's figure


def test_study_ap_matches_independent_ap():
    path = STUDY / "inference"
    st = E.study_table(E.load_prediction_dir(path), metric="ap")
    assert st.mean == pytest.approx(_independent_mean(path, average_precision_score), abs=1e-12)


def test_only_files_directly_in_the_folder_count():
    frames = E.load_prediction_dir(MINI)
    assert sorted(frames) == ["fake_dalle2", "fake_sd3", "real_coco", "real_fodb"]
    assert all(f["spai"].dtype == np.float32 for f in frames.values())
    # inference/real/real_raise.csv duplicates exist in the study: a recursive glob would see them
    assert (MINI / "real" / "real_raise.csv").exists()


def test_table_cells_and_means_are_plain_means():
    frames = E.load_prediction_dir(MINI)
    st = E.study_table(frames, metric="auc")
    for fake in ("dalle2", "sd3"):
        fs = frames[f"fake_{fake}"]["spai"].to_numpy()
        cells = []
        for real in ("coco", "fodb"):
            rs = frames[f"real_{real}"]["spai"].to_numpy()
            cell = roc_auc_score(np.r_[np.ones(fs.size), np.zeros(rs.size)], np.r_[fs, rs])
            assert st.table.loc[fake, real] == pytest.approx(cell, abs=1e-12)
            cells.append(cell)
        assert st.table.loc[fake, "mean"] == pytest.approx(np.mean(cells))
    assert st.mean == pytest.approx(st.table["mean"].mean())


def test_in_memory_frames_and_set_choice():
    rng = np.random.default_rng(0)
    frames = {
        "fake_a": pd.DataFrame({"spai": rng.random(20), "class": 1}),
        "real_x": pd.DataFrame({"spai": rng.random(30) * 0.8, "class": 0}),
        "real_y": pd.DataFrame({"spai": np.zeros(10), "class": 0}),
    }
    st = E.study_table(frames, metric="acc", real_sets=["y"])
    assert st.real_sets == ["y"]
    expected = np.mean(np.r_[frames["fake_a"]["spai"] > 0.5, np.ones(10, bool)])
    assert st.mean == pytest.approx(expected)
    with pytest.raises(ValueError, match="real sets \\['z'\\] not available; have: x, y"):
        E.study_table(frames, real_sets=["z"])
    with pytest.raises(KeyError, match="Unknown metric"):
        E.study_table(frames, metric="nope")


def test_compare_defaults_to_common_real_sets_and_deltas():
    frames = E.load_prediction_dir(MINI)
    reduced = {k: v for k, v in frames.items() if k != "real_fodb"}
    degraded = {k: v.assign(spai=np.float32(0.5)) if k == "fake_sd3" else v for k, v in reduced.items()}
    cmp = E.compare_conditions({"original": frames, "degraded": degraded}, metric="auc")
    assert cmp.real_sets == ["coco"]
    assert cmp.baseline == "original"
    only_coco = E.study_table(frames, real_sets=["coco"]).mean
    assert cmp.summary.loc["original", "mean"] == pytest.approx(only_coco)
    assert cmp.summary.loc["original", "delta"] == 0.0
    assert cmp.summary.loc["degraded", "delta"] == pytest.approx(cmp.summary.loc["degraded", "mean"] - only_coco)
    assert cmp.per_fake.loc["sd3", "degraded"] == pytest.approx(
        roc_auc_score(np.r_[np.ones(60), np.zeros(60)], np.r_[np.full(60, 0.5), frames["real_coco"]["spai"]])
    )


def test_combi_model_files_have_only_spai_and_class():
    frames = E.load_prediction_dir(COMBI)
    assert sorted(frames) == ["fake_dalle2", "fake_sd3", "real_coco"]
    assert E.set_name("real_coco_test_embeddings_SplitMLP-v1_prediction_results") == "coco"
    st = E.study_table(frames)
    assert list(st.table.index) == ["dalle2", "sd3"]


def test_missing_score_column_is_a_clear_error(tmp_path):
    (tmp_path / "fake_a.csv").write_text("image,class\nx.png,1\n")
    with pytest.raises(ValueError, match="missing column\\(s\\) \\['spai'\\]"):
        E.load_prediction_dir(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no fake\\*.csv"):
        E.load_prediction_dir(tmp_path / "empty")
    with pytest.raises(FileNotFoundError):
        E.load_prediction_dir(tmp_path / "absent")


def test_cli_prints_table_and_writes_csv_json(tmp_path, capsys):
    out_csv, out_json = tmp_path / "t.csv", tmp_path / "t.json"
    rc = E.main(
        [
            "--metric",
            "auc",
            "--input_dir",
            str(STUDY / "inference"),
            "--input_dir",
            str(STUDY / "meme_inference"),
            "--csv",
            str(out_csv),
            "--json",
            str(out_json),
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "Average AUC: 0.9191" in text and "Average AUC: 0.8119" in text
    assert "delta vs inference" in text
    doc = json.loads(out_json.read_text())
    assert doc["real_sets"] == ["coco", "fodb", "imagenet", "openimages"]
    assert doc["conditions"]["meme_inference"]["delta"] == pytest.approx(0.81193 - 0.91910, abs=1e-4)
    long = pd.read_csv(out_csv)
    assert len(long) == 2 * (13 * 5 + 1)
    assert set(long["condition"]) == {"inference", "meme_inference"}


def test_cli_errors_are_reported_not_raised(tmp_path, capsys):
    assert E.main(["--metric", "f1", "--input_dir", str(MINI)]) == 2
    assert "Unknown metric 'f1'" in capsys.readouterr().err
    assert E.main(["--input_dir", str(tmp_path / "absent")]) == 2
    assert "not found" in capsys.readouterr().err


def test_bootstrap_ci_of_a_condition_mean():
    frames = E.load_prediction_dir(MINI)
    ci = E.study_mean_ci(frames, metric="auc", n=60, seed=3)
    assert ci == E.study_mean_ci(frames, metric="auc", n=60, seed=3)
    assert ci.estimate == pytest.approx(E.study_table(frames).mean)
    assert ci.low < ci.estimate < ci.high and ci.n == 60 and ci.level == 0.95
    narrow = E.study_mean_ci(frames, metric="auc", n=60, seed=3, level=0.5)
    assert ci.low <= narrow.low <= narrow.high <= ci.high


def test_cli_ci_option(tmp_path, capsys):
    out_json = tmp_path / "ci.json"
    assert E.main(["--input_dir", str(MINI), "--ci", "20", "--json", str(out_json)]) == 0
    assert "95% bootstrap CI (20 replicates)" in capsys.readouterr().out
    ci = json.loads(out_json.read_text())["conditions"]["mini"]["ci"]
    assert ci["low"] <= ci["high"] and ci["n"] == 20


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text)
    return folder / name


def test_labels_come_from_the_class_column_as_in_the_study(tmp_path, capsys):
    """A fake file holding a class-0 row: the pooled labels are [1, 0 | 0], so the one positive
    (0.2) ranks below both negatives and AUC is 0.0 (the study's code); by file name it was 0.5."""
    _write(tmp_path, "fake_f.csv", "image,class,split,spai\na.png,1,test,0.2\nb.png,0,test,0.9\n")
    _write(tmp_path, "real_r.csv", "image,class,split,spai\nc.png,0,test,0.5\n")
    st = E.study_table(E.load_prediction_dir(tmp_path))
    assert st.mean == pytest.approx(roc_auc_score([1, 0, 0], [0.2, 0.9, 0.5])) == 0.0
    assert E.main(["--input_dir", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "Average AUC: 0.0000" in captured.out
    assert "1 row(s) labelled class 0 in a fake file" in captured.err


def test_rows_without_a_score_are_named_and_refused(tmp_path, capsys):
    folder = tmp_path / "cond"
    _write(folder, "fake_f.csv", "image,class,split,spai\na.png,1,test,0.8\nbroken.png,1,test,\nc.png,1,test,0.7\n")
    _write(folder, "real_r.csv", "image,class,split,spai\nd.png,0,test,0.1\ne.png,0,test,0.6\n")
    with pytest.raises(ValueError, match="fake_f.csv: row 2 \\(broken.png\\): no score"):
        E.load_prediction_dir(folder)
    assert E.main(["--input_dir", str(folder)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "row 2 (broken.png)" in err[0] and "--drop-missing" in err[0]
    assert E.main(["--input_dir", str(folder), "--drop-missing"]) == 0
    captured = capsys.readouterr()
    want = roc_auc_score([1, 1, 0, 0], [0.8, 0.7, 0.1, 0.6])
    assert f"Average AUC: {want:.4f}" in captured.out
    assert "row 2 (broken.png): no score; left out" in captured.err


def test_bad_score_or_class_values_name_the_row(tmp_path):
    _write(tmp_path, "fake_f.csv", "image,class,spai\na.png,1,0.8\nb.png,1,high\n")
    with pytest.raises(ValueError, match="fake_f.csv: row 2 \\(b.png\\): score is not a number"):
        E.load_prediction_dir(tmp_path)
    _write(tmp_path, "fake_f.csv", "image,class,spai\na.png,2,0.8\n")
    with pytest.raises(ValueError, match="row 1 \\(a.png\\): class must be 0 or 1"):
        E.load_prediction_dir(tmp_path)


def test_files_without_a_class_column_are_labelled_by_name(tmp_path):
    _write(tmp_path, "fake_f.csv", "spai\n0.9\n0.4\n")
    _write(tmp_path, "real_r.csv", "spai\n0.5\n")
    st = E.study_table(E.load_prediction_dir(tmp_path))
    assert st.mean == pytest.approx(roc_auc_score([1, 1, 0], [0.9, 0.4, 0.5]))
