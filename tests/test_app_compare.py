"""Compare page (AppTest): empty store -> one-click study import (a real worker job) -> the
study's table, metric switch, cell drill-down, CSV export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from jobs.worker import JobWorker, WorkerConfig
from db.session import dispose_all

PAGE = str(Path(__file__).resolve().parent.parent / "dashboard" / "views" / "compare.py")
TIMEOUT = 120


@pytest.fixture(scope="module")
def study_url(tmp_path_factory: pytest.TempPathFactory):
    """A SQLite store whose study import was started from the page and run by the worker."""
    url = f"sqlite:///{tmp_path_factory.mktemp('compare') / 'spai.db'}"
    mp = pytest.MonkeyPatch()
    mp.setenv("DATABASE_URL", url)
    mp.setenv("SPAI_START_WORKER", "0")  # the test runs the worker itself
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert "no predictions yet" in at.info[0].value
    at.button(key="compare.import").click().run()
    assert "Import job" in " ".join(c.value for c in at.caption)
    assert JobWorker(WorkerConfig(once=True), url=url).serve() == 1
    yield url, at
    mp.undo()
    dispose_all()


def _page(url: str) -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()


def test_import_then_study_table(study_url) -> None:
    url, at = study_url
    at.run()  # the page after the import: the table instead of the import button
    assert not at.exception
    summary = at.dataframe[0].value
    assert summary.loc["original", "mean auc"] == pytest.approx(0.919, abs=5e-4)
    assert summary.loc["screenshot", "mean auc"] == pytest.approx(0.623, abs=5e-4)
    assert summary.loc["screenshot", "delta"] == pytest.approx(0.623 - 0.919, abs=1e-3)
    assert at.multiselect(key="compare.reals").value == ["coco", "fodb", "imagenet", "openimages"]
    table = at.dataframe(key="compare.table").value
    assert list(table.columns)[0] == "original" and table.index[-1] == "mean"
    heat = at.get("plotly_chart")[0].proto.spec
    assert "Heatmap".lower() in heat.lower() and "toImageButtonOptions" in at.get("plotly_chart")[0].proto.config


def test_models_side_by_side_metric_and_reals(study_url) -> None:
    url, _ = study_url
    at = _page(url)
    at.multiselect(key="compare.models").set_value(
        ["SPAI (official weights, study)", "ROGER (study fused model)"]
    ).run()
    assert not at.exception
    roger = at.dataframe[1].value
    assert 0.5 < roger.loc["original", "mean auc"] <= 1.0
    at.selectbox(key="compare.metric").set_value("ap").run()
    assert "mean ap" in at.dataframe[0].value.columns
    at.multiselect(key="compare.reals").set_value(["coco"]).run()
    assert not at.exception
    assert "Mean over coco" in " ".join(c.value for c in at.caption)
    assert at.multiselect(key="compare.reals").value == ["coco"]  # kept across reruns
    at.multiselect(key="compare.reals").set_value([]).run()
    assert "at least one condition and one real set" in at.warning[0].value


def test_cell_drilldown_and_csv(study_url) -> None:
    url, _ = study_url
    at = _page(url)
    at.session_state["compare.table"] = {"selection": {"rows": [], "columns": [], "cells": [[0, "screenshot"]]}}
    at.run()
    assert not at.exception
    assert any("dalle2 · screenshot" in h.value for h in at.subheader)
    rows = at.dataframe[-1].value
    assert len(rows) > 0 and rows["score"].is_monotonic_increasing  # worst misses first
    assert not rows["on this machine"].any()  # imported scores: shown as paths
    assert any(
        "None of these" in i.value and "not" not in i.value[:5] and "paths" in i.value for i in at.info
    )  # drill-down says the study's files are not here
    csv = at.get("download_button")[0]
    assert csv.proto.label == "Download the table as CSV"


def test_bootstrap_intervals_on_hover(study_url) -> None:
    url, _ = study_url
    at = _page(url)
    at.multiselect(key="compare.conditions").set_value(["original"]).run()
    at.toggle(key="compare.bootstrap").set_value(True).run()
    assert not at.exception
    assert "95% CI [" in at.get("plotly_chart")[0].proto.spec


# --- the user's own data beside the study (issue 12.1) ----------------------------------------

STUDY_SPAI = "SPAI (official weights, study)"
OWN_REAL = ["01_rgb_224x224.png", "02_rgb_500x300.png", "03_rgb_1024x768.png", "07_photo_640x427.jpg"]
OWN_FAKE = ["04_rgb_97x130.png", "05_gray_320x256.png", "06_rgba_460x470.png", "08_synth_449x450.png"]


@pytest.fixture(scope="module")
def mixed_store(tmp_path_factory: pytest.TempPathFactory):
    """The study imported, plus the tiny model's runs on the user's own sets: the real set under
    `original` only, the fake set under `original` and `meme` (as a user who scored the fakes
    under one more condition leaves it)."""
    from app_support import score_own_sets, study_store

    tmp = tmp_path_factory.mktemp("mixed")
    db = study_store(tmp)
    url = f"sqlite:///{db}"
    runs = score_own_sets(
        url,
        tmp / "own",
        {
            "my_real": ("real", OWN_REAL, ("original",)),
            "my_fake": ("fake", OWN_FAKE, ("original", "meme")),
        },
    )
    dispose_all()
    mp = pytest.MonkeyPatch()
    mp.setenv("DATABASE_URL", url)
    mp.setenv("SPAI_START_WORKER", "0")
    yield url, runs
    mp.undo()
    dispose_all()


def test_study_model_beside_own_model_renders_every_condition(mixed_store) -> None:
    """Regression: mean row `nan`, cells `None`, then ValueError: condition 'original' has no
    fake or no selected real scores."""
    from app_support import shown_missing

    at = _page(mixed_store[0])
    at.multiselect(key="compare.models").set_value([STUDY_SPAI, "tiny"]).run()
    assert not at.exception
    conds = at.multiselect(key="compare.conditions").value
    assert "meme" in conds and "screenshot" in conds  # every condition of both models
    assert at.multiselect(key="compare.reals").value == ["coco", "fodb", "imagenet", "my_real", "openimages"]
    assert any("scored on different real sets" in i and "tiny**: my_real" in i for i in (e.value for e in at.info))
    study, own = at.dataframe[0].value, at.dataframe[1].value
    assert study.loc["original", "mean auc"] == pytest.approx(0.919, abs=5e-4)
    assert 0.0 <= own.loc["original", "mean auc"] <= 1.0  # the own model's mean has a number
    assert np.isnan(own.loc["meme", "mean auc"])  # my_real was never scored under meme
    assert shown_missing(at) == []
    heat = json.loads(at.get("plotly_chart")[1].proto.spec)["data"][0]
    reasons = [c for row in heat["customdata"] for c in row if "no value" in c]
    assert any("real set my_real not scored under meme by tiny" in r for r in reasons)
    assert any("tiny has no scores of my_fake under jpeg" in r or "under screenshot" in r for r in reasons)
    at.selectbox(key="compare.roc_condition").set_value("meme").run()
    at.selectbox(key="compare.table_model").set_value("tiny").run()
    assert not at.exception and shown_missing(at) == []
    assert any("real set my_real not scored under meme" in c for c in (e.value for e in at.caption))


def test_own_model_alone_defaults_to_its_real_sets(mixed_store) -> None:
    """Regression: with only the own model selected the real sets were empty and the page said
    "Pick at least one condition and one real set"."""
    from app_support import shown_missing

    at = _page(mixed_store[0])
    assert at.multiselect(key="compare.models").value == [STUDY_SPAI]
    at.multiselect(key="compare.models").set_value(["tiny"]).run()
    assert not at.exception and not at.warning
    assert at.multiselect(key="compare.conditions").value == ["original", "meme"]
    assert at.multiselect(key="compare.reals").value == ["my_real"]
    assert "Mean over my_real" in " ".join(c.value for c in at.caption)
    assert shown_missing(at) == []


def test_run_link_opens_compare_on_its_run(mixed_store) -> None:
    from dashboard.links import compare_query_for_run, compare_url_for_run

    url, runs = mixed_store
    run_id = runs[("my_fake", "meme")]
    assert compare_url_for_run(run_id) == f"compare?run={run_id}"
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.query_params.update(compare_query_for_run(run_id))
    at.run()
    assert not at.exception
    assert at.multiselect(key="compare.models").value == ["tiny"]
    assert at.selectbox(key="compare.roc_condition").value == "meme"
    assert any(f"Run {run_id}: **tiny** on the fake set **my_fake** under **meme**" in i.value for i in at.info)
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.query_params["run"] = "999999"
    at.run()
    assert not at.exception and "Run 999999 is not in the store" in at.warning[0].value


# --- paired deltas between two models (issue 17.4; robustness.study.deltas) -------------------


def test_paired_deltas_between_two_models(study_url) -> None:
    url, _ = study_url
    at = _page(url)
    assert "Pick two models above" in " ".join(c.value for c in at.caption)
    at.multiselect(key="compare.models").set_value(["ROGER (study fused model)", STUDY_SPAI]).run()
    at.toggle(key="compare.delta_on").set_value(True).run()
    assert not at.exception
    frame = at.dataframe[-1].value.set_index("condition")  # the page's last table
    shot = frame.loc["screenshot"]
    assert shot["delta"] == pytest.approx(0.912 - 0.623, abs=1e-3)
    assert shot["low"] < shot["delta"] < shot["high"] and shot["low"] > 0
    assert shot["images"] == 16638  # 13 fake + 4 real sets, every image paired


def test_paired_deltas_say_why_models_cannot_be_paired(mixed_store) -> None:
    at = _page(mixed_store[0])
    at.multiselect(key="compare.models").set_value([STUDY_SPAI, "tiny"]).run()
    at.toggle(key="compare.delta_on").set_value(True).run()
    assert not at.exception
    assert any(i.value.startswith("No condition can be compared") for i in at.info)


# --- a study file uploaded on the page (issue 17.1; robustness.study) ------------------------

ROGER_YAML = Path(__file__).resolve().parent.parent / "robustness" / "study" / "roger.yaml"


def test_study_file_upload_shows_its_tables_and_report(study_url) -> None:
    url, _ = study_url
    at = _page(url)
    at.text_input(key="compare.study_base").set_value(str(ROGER_YAML.parent))
    at.file_uploader(key="compare.study_file").set_value(
        ("roger.yaml", ROGER_YAML.read_bytes(), "application/x-yaml")
    ).run()
    assert not at.exception
    text = " ".join(m.value for m in at.markdown)
    assert "| **Mean** | 0.919 | 0.743 | 0.812 | 0.623 | 0.806 |" in text
    at.toggle(key="compare.study_report").set_value(True).run()
    assert not at.exception
    assert at.get("download_button")[-1].proto.label == "Download the report"


def test_study_file_upload_errors(study_url) -> None:
    url, _ = study_url
    at = _page(url)
    bad = ROGER_YAML.read_text().replace("metrics: [auc]", "metrics: [auroc]")
    at.text_input(key="compare.study_base").set_value(str(ROGER_YAML.parent))
    at.file_uploader(key="compare.study_file").set_value(("bad.yaml", bad.encode(), "application/x-yaml")).run()
    assert not at.exception
    assert "metrics[0]: unknown metric 'auroc'" in at.error[0].value
    missing = bad.replace("metrics: [auroc]", "metrics: [auc]").replace(
        "real_sets: [coco, fodb, imagenet, openimages]", "real_sets: [coco, raise-2]"
    )
    at.file_uploader(key="compare.study_file").set_value(("partial.yaml", missing.encode(), "application/x-yaml")).run()
    assert not at.exception
    assert any("is not all in the store yet" in i.value and "raise-2" in i.value for i in at.info)


def test_study_file_upload_stays_inside_the_data_roots(study_url, tmp_path) -> None:
    """A visitor cannot anchor a study outside the allowed folders, nor name a path that
    leaves them (an absolute path or ../) from inside one (issue 15.3)."""
    url, _ = study_url
    at = _page(url)
    at.text_input(key="compare.study_base").set_value("/etc").run()
    at.file_uploader(key="compare.study_file").set_value(
        ("roger.yaml", ROGER_YAML.read_bytes(), "application/x-yaml")
    ).run()
    assert not at.exception
    assert "outside the folders this server allows" in at.error[0].value
    escaping = ROGER_YAML.read_text().replace("study: roger-study", f"study: {tmp_path}")
    assert escaping != ROGER_YAML.read_text()
    at.text_input(key="compare.study_base").set_value(str(ROGER_YAML.parent))
    at.file_uploader(key="compare.study_file").set_value(("escape.yaml", escaping.encode(), "application/x-yaml")).run()
    assert not at.exception
    assert "a path in the study" in at.error[0].value and str(tmp_path) in at.error[0].value
