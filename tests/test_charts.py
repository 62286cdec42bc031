"""dashboard.charts: fixed colour scales, reasons on empty cells, legends below the plots."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.colors

from dashboard import charts


def _rgb(colour: str) -> str:
    return plotly.colors.label_rgb(plotly.colors.hex_to_rgb(colour))


def _colour(fig, value: float) -> str:
    scale = [[p, _rgb(c)] for p, c in fig.data[0].colorscale]
    return plotly.colors.sample_colorscale(scale, [value])[0]


def test_auc_heatmap_uses_a_fixed_scale_with_chance_neutral() -> None:
    """Regression: 0.472 was bright green beside 0.444 deep red (scale stretched to the data)."""
    values = pd.DataFrame({"original": [0.472, 0.444, np.nan]}, index=["a", "b", "mean"])
    reasons = pd.DataFrame({"original": ["", "", "the mean needs every fake set"]}, index=values.index)
    fig = charts.heatmap_figure(values, title="t", metric="auc", reasons=reasons)
    trace = fig.data[0]
    assert (trace.zmin, trace.zmax) == (0.0, 1.0)
    assert _colour(fig, 0.5) == _rgb(charts.CHANCE)  # chance is neutral grey
    near = [np.array(plotly.colors.unlabel_rgb(_colour(fig, v))) for v in (0.472, 0.444)]
    assert np.abs(near[0] - near[1]).max() < 40  # alike, both just below chance
    assert list(trace.colorbar.ticktext) == ["0", "0.5 chance", "1 best"]
    assert trace.text[2][0] == "" and "the mean needs every fake set" in trace.customdata[2][0]
    assert "0.4720" in trace.customdata[0][0]


def test_scales_per_metric() -> None:
    assert charts.metric_scale("eer").colorscale()[0][1] == charts.BETTER  # 0 = best for EER
    assert charts.metric_scale("ap").chance is None
    assert charts.metric_scale("tpr@fpr1%") is charts.DEFAULT_SCALE


def test_roc_legend_sits_below_the_plot() -> None:
    curves = {f"model {i} · original": (np.array([0, 0.5, 1]), np.array([0, 0.8, 1])) for i in range(6)}
    fig = charts.roc_figure(curves, title="ROC")
    assert fig.layout.legend.orientation == "h" and fig.layout.legend.y < 0
    assert fig.layout.height >= 440
