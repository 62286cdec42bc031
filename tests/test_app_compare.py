"""Compare page (AppTest): empty store -> one-click study import (a real worker job) -> the
study's table, metric switch, cell drill-down, CSV export."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.worker import Worker, WorkerConfig
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
    assert Worker(WorkerConfig(once=True), url=url).serve() == 1
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
    assert at.multiselect(key="compare.reals").value == ["coco", "fodb", "imagenet",
                                                         "openimages"]
    table = at.dataframe(key="compare.table").value
    assert list(table.columns)[0] == "original" and table.index[-1] == "mean"
    heat = at.get("plotly_chart")[0].proto.spec
    assert "Heatmap".lower() in heat.lower() and "toImageButtonOptions" in \
        at.get("plotly_chart")[0].proto.config


def test_models_side_by_side_metric_and_reals(study_url) -> None:
    url, _ = study_url
    at = _page(url)
    at.multiselect(key="compare.models").set_value(
        ["SPAI (official weights, study)", "ROGER (study fused model)"]).run()
    assert not at.exception
    roger = at.dataframe[1].value
    assert 0.5 < roger.loc["original", "mean auc"] <= 1.0
    at.selectbox(key="compare.metric").set_value("ap").run()
    assert "mean ap" in at.dataframe[0].value.columns
    at.multiselect(key="compare.reals").set_value(["coco"]).run()
    assert not at.exception
    assert "Mean over coco" in " ".join(c.value for c in at.caption)
    at.multiselect(key="compare.reals").set_value([]).run()
    assert "at least one condition and one real set" in at.warning[0].value


def test_cell_drilldown_and_csv(study_url) -> None:
    url, _ = study_url
    at = _page(url)
    at.session_state["compare.table"] = {"selection": {"rows": [], "columns": [],
                                                       "cells": [[0, "screenshot"]]}}
    at.run()
    assert not at.exception
    assert any("dalle2 · screenshot" in h.value for h in at.subheader)
    rows = at.dataframe[-1].value
    assert len(rows) > 0 and rows["score"].is_monotonic_increasing  # worst misses first
    assert not rows["has_file"].any()  # imported scores: shown as paths
    csv = at.get("download_button")[0]
    assert csv.proto.label == "Download the table as CSV"


def test_bootstrap_intervals_on_hover(study_url) -> None:
    url, _ = study_url
    at = _page(url)
    at.multiselect(key="compare.conditions").set_value(["original"]).run()
    at.toggle(key="compare.bootstrap").set_value(True).run()
    assert not at.exception
    assert "95% CI [" in at.get("plotly_chart")[0].proto.spec
