"""Plotly figures for the Compare and Train pages (pure: data in, figure out).

``plotly_config(fmt)`` is the toolbar configuration that makes the camera button download the
chart as PNG or SVG. Heatmap colours sit on a fixed scale per metric (``metric_scale``), never
stretched to the data: for AUC 0.5 (chance) is neutral grey, 1.0 the deepest green and values
below chance take their own hue (purple), so 0.47 and 0.44 look alike, not green and red.
Legends sit below the plots, so many curves never squash the plot area.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go

EXPORT_FORMATS = ("png", "svg")
WORSE, CHANCE, BETTER = "#762a83", "#f2f2f2", "#1b7837"  # purple / neutral grey / green
LEGEND_BELOW = {"orientation": "h", "yanchor": "top", "y": -0.2, "xanchor": "left", "x": 0}


@dataclass(frozen=True)
class MetricScale:
    """Fixed colour scale of one metric on [0, 1]. ``chance`` is drawn neutral grey, the best
    end green, the other side of chance purple; ``chance=None`` (no fixed chance level): grey at
    the worst end to green at the best."""

    chance: float | None
    higher_is_better: bool = True
    note: str = ""  # one line for the legend caption

    def colorscale(self) -> list[list]:
        if self.chance is None:
            return [[0.0, CHANCE], [1.0, BETTER]] if self.higher_is_better else [[0.0, BETTER], [1.0, CHANCE]]
        lo, hi = (WORSE, BETTER) if self.higher_is_better else (BETTER, WORSE)
        return [[0.0, lo], [self.chance, CHANCE], [1.0, hi]]

    def colorbar(self, metric: str) -> dict:
        best, worst = "best", "worst"
        if self.chance is None:
            ticks = [0.0, 1.0]
            text = [f"0 {worst}", f"1 {best}"] if self.higher_is_better else [f"0 {best}", f"1 {worst}"]
        else:
            ticks = [0.0, self.chance, 1.0]
            text = ["0", f"{self.chance:g} chance", "1"]
            text[2 if self.higher_is_better else 0] += f" {best}"
        return {
            "title": {"text": metric.upper(), "side": "right"},
            "tickvals": ticks,
            "ticktext": text,
            "thickness": 12,
        }


SCALES = {
    "auc": MetricScale(0.5, note="0.5 = chance (grey), 1 = perfect (green), below 0.5 = worse than chance (purple)"),
    "acc": MetricScale(0.5, note="0.5 = chance on balanced sets (grey), 1 = perfect (green), below 0.5 purple"),
    "eer": MetricScale(0.5, higher_is_better=False, note="0 = perfect (green), 0.5 = chance (grey), above 0.5 purple"),
}
DEFAULT_SCALE = MetricScale(None, note="fixed 0 (grey) to 1 (green) scale; this metric has no fixed chance level")


def metric_scale(metric: str) -> MetricScale:
    """The fixed colour scale of ``metric`` (AP and TPR-at-FPR: 0 grey to 1 green)."""
    return SCALES.get(metric, DEFAULT_SCALE)


def plotly_config(fmt: str = "png", filename: str = "chart") -> dict:
    """Toolbar config: the camera button saves ``filename.<fmt>`` (png or svg)."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"export format must be one of {EXPORT_FORMATS}, got {fmt!r}")
    return {"displaylogo": False, "toImageButtonOptions": {"format": fmt, "filename": filename, "scale": 2}}


def heatmap_figure(
    values: pd.DataFrame,
    *,
    title: str,
    metric: str = "auc",
    low: pd.DataFrame | None = None,
    high: pd.DataFrame | None = None,
    delta: pd.DataFrame | None = None,
    reasons: pd.DataFrame | None = None,
) -> go.Figure:
    """Fake set x condition heatmap on the metric's fixed scale, the value printed in each cell
    and a colour bar. The hover shows the bootstrap interval (when given) and the delta against
    the baseline; an empty cell stays empty and its hover says why (``reasons``)."""
    scale = metric_scale(metric)
    z = values.to_numpy(dtype=float)
    empty = np.isnan(z)
    why = (
        reasons.reindex_like(values).fillna("").to_numpy(dtype=object)
        if reasons is not None
        else np.full(z.shape, "", dtype=object)
    )
    lo = hi = d = None
    if low is not None and high is not None:
        lo = low.reindex_like(values).to_numpy(dtype=float)
        hi = high.reindex_like(values).to_numpy(dtype=float)
    if delta is not None:
        d = delta.reindex_like(values).to_numpy(dtype=float)
    text = np.full(z.shape, "", dtype=object)
    hover = np.full(z.shape, "", dtype=object)
    for i, j in np.ndindex(z.shape):
        head = f"{values.index[i]} under {values.columns[j]}"
        if empty[i, j]:
            hover[i, j] = f"{head}: no value<br>{why[i, j] or 'no scores'}"
            continue
        text[i, j] = f"{z[i, j]:.3f}"
        hover[i, j] = f"{head}: {z[i, j]:.4f}"
        if lo is not None and not np.isnan(lo[i, j]):
            hover[i, j] += f"<br>95% CI [{lo[i, j]:.3f}, {hi[i, j]:.3f}]"
        if d is not None and not np.isnan(d[i, j]):
            hover[i, j] += f"<br>Δ vs baseline {d[i, j]:+.3f}"
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=list(values.columns),
            y=list(values.index),
            text=text,
            texttemplate="%{text}",
            customdata=hover,
            zmin=0.0,
            zmax=1.0,
            hoverongaps=True,
            colorscale=scale.colorscale(),
            colorbar=scale.colorbar(metric),
            hovertemplate="%{customdata}<extra></extra>",
        )
    )
    fig.update_layout(title=title, height=140 + 28 * len(values.index), margin={"l": 10, "r": 10, "t": 40, "b": 10})
    fig.update_yaxes(autorange="reversed")
    return fig


def roc_figure(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], *, title: str) -> go.Figure:
    """ROC curves, one line per label, with the chance diagonal."""
    fig = go.Figure()
    for label, (fpr, tpr) in curves.items():
        fig.add_trace(go.Scatter(x=fpr, y=tpr, mode="lines", name=label))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance", line={"dash": "dot", "color": "grey"}))
    fig.update_layout(
        title=title,
        xaxis_title="false-positive rate (reals called fake)",
        yaxis_title="true-positive rate (fakes caught)",
        height=440 + 22 * len(curves),
        legend=LEGEND_BELOW,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    fig.update_xaxes(range=[0, 1])
    fig.update_yaxes(range=[0, 1.02])
    return fig


def histogram_figure(hist: pd.DataFrame, *, title: str) -> go.Figure:
    """Score distributions (share per bin) of real and fake images, overlaid."""
    fig = go.Figure()
    for kind, color in (("real", "#1f77b4"), ("fake", "#d62728")):
        part = hist[hist["kind"] == kind]
        if len(part):
            fig.add_trace(go.Bar(x=part["bin"], y=part["share"], name=kind, opacity=0.6, marker_color=color))
    fig.update_layout(
        barmode="overlay",
        title=title,
        xaxis_title="score (P(fake))",
        yaxis_title="share of images",
        height=400,
        legend=LEGEND_BELOW,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    return fig


def curves_figure(frame: pd.DataFrame, x: str, ys: list[str], *, title: str) -> go.Figure:
    """Line chart of columns ``ys`` against ``x`` (training curves)."""
    fig = go.Figure()
    for y in ys:
        if y in frame and frame[y].notna().any():
            part = frame[[x, y]].dropna()
            fig.add_trace(go.Scatter(x=part[x], y=part[y], mode="lines+markers" if len(part) < 50 else "lines", name=y))
    fig.update_layout(title=title, xaxis_title=x, height=320, margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return fig
