"""Reusable draw-and-return widgets for the pages (Streamlit's demo-self-driving shape).

Each function draws one piece of UI and returns what the user chose (or nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from PIL import Image

from dashboard import state
from db.verdicts import (
    MIN_REFERENCE_REALS,
    REFERENCE_FPRS,
    ReferenceThresholds,
    Verdict,
)
from robustness.metrics import min_reals_for_fpr
from robustness.registry import list_conditions
from spai.calibration import FPR_CHOICES
from spai.overlay import OVERLAY_SCALES, OverlayScale, coolwarm, overlay_scale

if TYPE_CHECKING:
    from dashboard.resources import WorkerStatus

# Icons only for calibrated verdicts: an uncalibrated call gets an "uncalibrated" badge instead.
VERDICT_ICONS = {
    "likely real": ":material/verified:",
    "inconclusive": ":material/help:",
    "likely AI-generated": ":material/smart_toy:",
}
STRICT_FPRS = tuple(f for f in FPR_CHOICES if f < 0.05)  # the "likely AI-generated" band
LOOSE_FPRS = tuple(f for f in FPR_CHOICES if f >= 0.05)  # the "likely real" band
OVERLAY_SCALE_LABELS = {"uniform": "fixed (grey = uniform attention)", "stretch": "stretched to this image"}
PATCH_MARKER_PX = 18  # size of the invisible hover target at each patch centre
MISSING = "—"  # what a table shows for a missing value (never "None" or "nan")
THUMB_PX = 160  # thumbnails fit in a THUMB_PX x THUMB_PX box (width and height capped)


def data_table(frame: pd.DataFrame, **kwargs):
    """``st.dataframe`` that shows missing values as "—" (Streamlit's default is "None")."""
    kwargs.setdefault("placeholder", MISSING)
    return st.dataframe(frame, **kwargs)


def pct(rate: float) -> str:
    """A rate as a percentage without trailing zeros (0.005 -> "0.5%", 0.1 -> "10%")."""
    return f"{rate * 100:g}%"


def fmt_value(value: float | None, spec: str = ".3f") -> str:
    """A number for a label or metric, "—" when it is missing (None or NaN)."""
    return MISSING if value is None or value != value else format(value, spec)


def multiselect_with_default(label: str, options: Sequence, default: Sequence, key: str, **kwargs) -> list:
    """A multiselect that starts at ``default`` and goes back to it whenever its options or its
    default change (a keyed Streamlit multiselect otherwise keeps its old, now invalid, values
    and shows nothing selected)."""
    options, default = list(options), [d for d in default if d in options]
    context = (tuple(map(str, options)), tuple(map(str, default)))
    state.reset_widget_on_change(key, default, context)
    return st.multiselect(label, options, key=key, **kwargs)


def image_grid(files: Sequence[str], captions: Sequence[str], *, columns: int = 4, max_px: int = THUMB_PX) -> None:
    """Thumbnails of image files, each fitted into a ``max_px`` box (tall images do not run
    down the page); a file that cannot be read shows its reason instead."""
    from core.imageio import thumbnail

    cols = st.columns(columns)
    for i, (file, caption) in enumerate(zip(files, captions)):
        try:
            img = thumbnail(file, max_px)
        except Exception as exc:  # one unreadable file must not hide the others
            cols[i % columns].caption(f"{caption}: cannot read ({type(exc).__name__})")
            continue
        cols[i % columns].image(img, caption=caption)


def model_badge(name: str, origin: str, *, exists: bool) -> None:
    """Sidebar block: which model is active, with a DEMO badge for the demo model."""
    st.sidebar.markdown("**Active model**")
    if not exists:
        st.sidebar.warning(f"`{name}`: file not found", icon=":material/error:")
        return
    badge = " :orange-badge[DEMO]" if origin == "demo" else ""
    st.sidebar.markdown(f"`{name}` ({origin}){badge}")
    if origin == "demo":
        st.sidebar.caption(
            "A small model trained on an offline demo set: a demo, not a "
            "benchmark. Put the official weights at weights/spai.pth for real use."
        )


def worker_badge(status: WorkerStatus) -> None:
    """One line on the background worker: alive and what it runs, or why none runs."""
    if status.alive:
        busy = [job for _, job in status.alive if job]
        what = f"running {'; '.join(busy)}" if busy else "idle"
        n = f"{len(status.alive)} workers" if len(status.alive) > 1 else "Worker"
        st.caption(f":green[:material/circle:] {n} alive, {what}.")
    elif status.starting:
        st.caption(":orange[:material/circle:] Worker starting ...")
    elif not status.enabled:
        st.caption(
            ":grey[:material/circle:] No worker running (SPAI_START_WORKER=0): start one with `python -m jobs.worker`."
        )
    else:
        code = "" if status.exit_code is None else f" (last one exited with code {status.exit_code})"
        waiting = f"; {status.queued} job(s) waiting" if status.queued else ""
        st.caption(f":red[:material/circle:] No worker running{code}{waiting}.")


def store_unavailable(exc: Exception) -> None:
    """Say that the prediction store cannot be read, and why (pages keep working without it)."""
    st.warning(
        f"The prediction store is unavailable ({type(exc).__name__}: {exc}); stored results are not shown.",
        icon=":material/database:",
    )


def condition_picker(label: str, key: str, default: Sequence[str]) -> list[str]:
    """Multiselect of registered condition ids; returns the chosen ids in registry order."""
    ids = [c.id for c in list_conditions()]
    return st.multiselect(label, ids, default=[c for c in default if c in ids], key=key)


def verdict_card(score: float, verdict: Verdict, model_name: str) -> None:
    """Score, verdict band and what the band means."""
    left, right = st.columns([1, 2])
    left.metric("Score (P(AI-generated))", f"{score:.4f}")
    if verdict.calibrated:
        right.markdown(f"### {VERDICT_ICONS.get(verdict.label, '')} {verdict.label}")
    else:
        right.markdown(f"### {verdict.label} :gray-badge[uncalibrated]")
    right.caption(verdict.meaning)
    st.caption(f"Scored by `{model_name}`.")


def fpr_picker(key_strict: str, key_loose: str, n_real: int | None = None) -> tuple[float, float]:
    """The two false-positive rates behind the verdict bands (strict < loose). With ``n_real``
    reference reals the strict rate starts at the lowest one they can measure."""
    strict_default = REFERENCE_FPRS[0]
    if n_real and n_real < min_reals_for_fpr(strict_default):
        fits = [f for f in STRICT_FPRS if min_reals_for_fpr(f) <= n_real]
        strict_default = fits[0] if fits else STRICT_FPRS[-1]
    with st.expander("Verdict bands: false-positive rates"):
        left, right = st.columns(2)
        strict = left.select_slider(
            "likely AI-generated above the threshold at FPR",
            STRICT_FPRS,
            value=strict_default,
            key=key_strict,
            format_func=pct,
        )
        loose = right.select_slider(
            "likely real below the threshold at FPR",
            LOOSE_FPRS,
            value=REFERENCE_FPRS[1],
            key=key_loose,
            format_func=pct,
        )
    return strict, loose


def reference_note(ref: ReferenceThresholds | None, n_so_far: int | None = None) -> None:
    """Where the verdict thresholds come from, or exactly what is missing for them."""
    if ref is None:
        so_far = "the store cannot be read now" if n_so_far is None else f"{n_so_far} so far"
        st.info(
            f"This model is not calibrated: it needs at least {MIN_REFERENCE_REALS} real "
            f"images scored by this model; {so_far}. They count when they are unmodified "
            "(condition `original`) in an image set labelled real: score one with this "
            "model on the Jobs page. Until then the verdict uses the 0.5 decision threshold "
            "and its false-positive rate is unknown.",
            icon=":material/info:",
        )
        return
    parts = ", ".join(
        f"{t:.3f} at {pct(f)} FPR" if np.isfinite(t) else f"none at {pct(f)} FPR (needs {min_reals_for_fpr(f)} reals)"
        for f, t in sorted(ref.by_fpr.items())
    )
    st.caption(
        f"Verdict bands from {ref.n_real} real reference images: thresholds {parts}. "
        "Likely AI-generated = at or above the strictest threshold; likely real = below "
        "the loosest; inconclusive in between. Reference images: "
        f"{'; '.join(ref.sources[:4])}{' ...' if len(ref.sources) > 4 else ''}."
    )


def overlay_controls(key_show: str, key_opacity: str, key_scale: str) -> tuple[bool, float, str]:
    """Toggle, opacity slider and colour scale of the attention overlay."""
    left, mid, right = st.columns(3)
    show = left.toggle("Attention overlay", value=True, key=key_show)
    opacity = mid.slider("Overlay opacity", 0.0, 1.0, 0.45, 0.05, key=key_opacity, disabled=not show)
    scale = right.radio(
        "Colour scale",
        OVERLAY_SCALES,
        format_func=OVERLAY_SCALE_LABELS.get,
        key=key_scale,
        disabled=not show,
        horizontal=True,
    )
    return show, opacity, scale


def attention_colorbar(scale: OverlayScale) -> go.Figure:
    """A horizontal colour bar for the attention overlay, labelled in attention weights."""
    pos = np.linspace(0.0, 1.0, 64)
    colours = [f"rgb({r * 255:.0f},{g * 255:.0f},{b * 255:.0f})" for r, g, b in coolwarm(pos)]
    ticks = [0.0, 0.5, 1.0]
    labels = [f"{scale.lo:.4f}", f"{scale.mid:.4f}", f"{scale.hi:.4f}"]
    if scale.mode == "uniform":
        labels[1] += " uniform"
    fig = go.Figure(
        go.Heatmap(z=[pos], x=pos, colorscale=[[p, c] for p, c in zip(pos, colours)], showscale=False, hoverinfo="skip")
    )
    fig.update_layout(height=70, margin={"l": 36, "r": 36, "t": 4, "b": 28})
    fig.update_xaxes(tickvals=ticks, ticktext=labels, range=[-0.01, 1.01])
    fig.update_yaxes(visible=False)
    return fig


def patch_grid_figure(
    image: Image.Image,
    boxes: Sequence[Sequence[int]],
    weights: Sequence[float],
    scale: OverlayScale | None = None,
) -> go.Figure:
    """The image with each crop outlined; hovering a crop's centre shows its attention weight.
    Markers are coloured on ``scale`` (default: the fixed scale around uniform attention)."""
    fig = go.Figure(go.Image(z=np.asarray(image.convert("RGB")), hoverinfo="skip"))
    w = np.asarray(weights, dtype=np.float64)
    scale = scale or overlay_scale(w, "uniform")
    pos = scale.position(w)
    colours = [f"rgb({r * 255:.0f},{g * 255:.0f},{b * 255:.0f})" for r, g, b in coolwarm(pos)]
    share = w / w.sum() if w.size and w.sum() > 0 else w
    for left, top, right, bottom in boxes:
        fig.add_shape(
            type="rect", x0=left, y0=top, x1=right, y1=bottom, line={"color": "rgba(255,255,255,0.8)", "width": 1}
        )
    cx = [(b[0] + b[2]) / 2 for b in boxes]
    cy = [(b[1] + b[3]) / 2 for b in boxes]
    text = [f"patch {i}<br>attention {w[i]:.4f}<br>share {share[i]:.1%}" for i in range(len(w))]
    fig.add_trace(
        go.Scatter(
            x=cx,
            y=cy,
            mode="markers+text",
            text=[str(i) for i in range(len(cx))],
            textfont={"color": "white"},
            hovertext=text,
            hoverinfo="text",
            marker={"size": PATCH_MARKER_PX, "symbol": "square", "opacity": 0.35, "color": colours},
        )
    )
    fig.update_layout(
        margin={"l": 0, "r": 0, "t": 0, "b": 0}, showlegend=False, height=min(600, max(250, image.height))
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def scores_table(rows: pd.DataFrame) -> None:
    """A compact table of scores with a bar per row (missing values as "—")."""
    data_table(
        rows,
        hide_index=True,
        column_config={
            "score": st.column_config.ProgressColumn("score", min_value=0.0, max_value=1.0, format="%.4f"),
        },
    )
