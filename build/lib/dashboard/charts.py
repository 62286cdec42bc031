"""Plotly figures for the Compare and Train pages (pure: data in, figure out).

``plotly_config(fmt)`` is the toolbar configuration that makes the camera button download the
chart as PNG or SVG.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go

EXPORT_FORMATS = ("png", "svg")
HEATMAP_SCALE = "RdYlGn"  # red = bad, green = good for higher-is-better metrics


def plotly_config(fmt: str = "png", filename: str = "chart") -> dict:
    """Toolbar config: the camera button saves ``filename.<fmt>`` (png or svg)."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"export format must be one of {EXPORT_FORMATS}, got {fmt!r}")
    return {"displaylogo": False,
            "toImageButtonOptions": {"format": fmt, "filename": filename, "scale": 2}}


def heatmap_figure(
    values: pd.DataFrame, *, title: str, higher_is_better: bool = True,
    low: pd.DataFrame | None = None, high: pd.DataFrame | None = None,
    delta: pd.DataFrame | None = None,
) -> go.Figure:
    """Fake set x condition heatmap with the value in each cell; the hover shows the
    bootstrap interval (when given) and the delta against the baseline."""
    z = values.to_numpy(dtype=float)
    text = np.where(np.isnan(z), "", np.vectorize(lambda v: f"{v:.3f}")(np.nan_to_num(z)))
    extra = np.full(z.shape, "", dtype=object)
    if low is not None and high is not None:
        lo = low.reindex_like(values).to_numpy(dtype=float)
        hi = high.reindex_like(values).to_numpy(dtype=float)
        ok = ~np.isnan(lo)
        extra[ok] = [f"<br>95% CI [{a:.3f}, {b:.3f}]" for a, b in zip(lo[ok], hi[ok])]
    if delta is not None:
        d = delta.reindex_like(values).to_numpy(dtype=float)
        ok = ~np.isnan(d)
        extra[ok] = extra[ok] + np.array([f"<br>Δ vs baseline {v:+.3f}" for v in d[ok]],
                                         dtype=object)
    fig = go.Figure(go.Heatmap(
        z=z, x=list(values.columns), y=list(values.index), text=text,
        texttemplate="%{text}", customdata=extra, zmin=np.nanmin(z) if np.isfinite(z).any()
        else 0, zmax=np.nanmax(z) if np.isfinite(z).any() else 1,
        colorscale=HEATMAP_SCALE, reversescale=not higher_is_better,
        hovertemplate="%{y} under %{x}: %{z:.4f}%{customdata}<extra></extra>",
    ))
    fig.update_layout(title=title, height=120 + 28 * len(values.index),
                      margin={"l": 10, "r": 10, "t": 40, "b": 10})
    fig.update_yaxes(autorange="reversed")
    return fig


def roc_figure(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], *, title: str) -> go.Figure:
    """ROC curves, one line per label, with the chance diagonal."""
    fig = go.Figure()
    for label, (fpr, tpr) in curves.items():
        fig.add_trace(go.Scatter(x=fpr, y=tpr, mode="lines", name=label))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance",
                             line={"dash": "dot", "color": "grey"}))
    fig.update_layout(title=title, xaxis_title="false-positive rate (reals called fake)",
                      yaxis_title="true-positive rate (fakes caught)", height=420,
                      margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return fig


def histogram_figure(hist: pd.DataFrame, *, title: str) -> go.Figure:
    """Score distributions (share per bin) of real and fake images, overlaid."""
    fig = go.Figure()
    for kind, color in (("real", "#1f77b4"), ("fake", "#d62728")):
        part = hist[hist["kind"] == kind]
        if len(part):
            fig.add_trace(go.Bar(x=part["bin"], y=part["share"], name=kind, opacity=0.6,
                                 marker_color=color))
    fig.update_layout(barmode="overlay", title=title, xaxis_title="score (P(fake))",
                      yaxis_title="share of images", height=360,
                      margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return fig


def curves_figure(frame: pd.DataFrame, x: str, ys: list[str], *, title: str) -> go.Figure:
    """Line chart of columns ``ys`` against ``x`` (training curves)."""
    fig = go.Figure()
    for y in ys:
        if y in frame and frame[y].notna().any():
            part = frame[[x, y]].dropna()
            fig.add_trace(go.Scatter(x=part[x], y=part[y], mode="lines+markers"
                                     if len(part) < 50 else "lines", name=y))
    fig.update_layout(title=title, xaxis_title=x, height=320,
                      margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return fig
