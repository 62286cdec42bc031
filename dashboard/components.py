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

from db.dashboard_models import REFERENCE_FPRS, ReferenceThresholds, Verdict
from robustness.registry import list_conditions

if TYPE_CHECKING:
    from dashboard.resources import WorkerStatus

VERDICT_ICONS = {"likely real": ":material/verified:", "inconclusive": ":material/help:",
                 "likely AI-generated": ":material/smart_toy:"}
STRICT_FPRS = (0.001, 0.005, 0.01, 0.02)  # choices for the "likely AI-generated" band
LOOSE_FPRS = (0.05, 0.1, 0.2)  # choices for the "likely real" band (always above the strict)
PATCH_MARKER_PX = 18  # size of the invisible hover target at each patch centre
MISSING = "—"  # what a table shows for a missing value (never "None" or "nan")
THUMB_PX = 160  # thumbnails fit in a THUMB_PX x THUMB_PX box (width and height capped)
THUMB_MAX_PIXELS = 40_000_000  # decode cap for a thumbnail's source file


def data_table(frame: pd.DataFrame, **kwargs):
    """``st.dataframe`` that shows missing values as "—" (Streamlit's default is "None")."""
    kwargs.setdefault("placeholder", MISSING)
    return st.dataframe(frame, **kwargs)


def fmt_value(value: float | None, spec: str = ".3f") -> str:
    """A number for a label or metric, "—" when it is missing (None or NaN)."""
    return MISSING if value is None or value != value else format(value, spec)


def multiselect_with_default(label: str, options: Sequence, default: Sequence, key: str,
                             **kwargs) -> list:
    """A multiselect that starts at ``default`` and goes back to it whenever its options or its
    default change (a keyed Streamlit multiselect otherwise keeps its old, now invalid, values
    and shows nothing selected)."""
    options, default = list(options), [d for d in default if d in options]
    marker = key + ".context"
    context = (tuple(map(str, options)), tuple(map(str, default)))
    if st.session_state.get(marker) != context or key not in st.session_state:
        st.session_state[key] = default
        st.session_state[marker] = context
    return st.multiselect(label, options, key=key, **kwargs)


def image_grid(files: Sequence[str], captions: Sequence[str], *, columns: int = 4,
               max_px: int = THUMB_PX) -> None:
    """Thumbnails of image files, each fitted into a ``max_px`` box (tall images do not run
    down the page); a file that cannot be read shows its reason instead."""
    from spai.imageio import open_rgb

    cols = st.columns(columns)
    for i, (file, caption) in enumerate(zip(files, captions)):
        try:
            img = open_rgb(file, THUMB_MAX_PIXELS)
        except Exception as exc:  # one unreadable file must not hide the others
            cols[i % columns].caption(f"{caption}: cannot read ({type(exc).__name__})")
            continue
        img.thumbnail((max_px, max_px))
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
        st.sidebar.caption("A small model trained on an offline demo set: a demo, not a "
                           "benchmark. Put the official weights at weights/spai.pth for real use.")


def worker_badge(status: WorkerStatus) -> None:
    """One line on the background worker: alive and what it runs, or why none runs."""
    if status.alive:
        busy = [job for _, job in status.alive if job]
        what = f"running {'; '.join(busy)}" if busy else "idle"
        n = f"{len(status.alive)} workers" if len(status.alive) > 1 else "Worker"
        st.caption(f":green[:material/circle:] {n} alive, {what}.")
    elif not status.enabled:
        st.caption(":grey[:material/circle:] No worker running (SPAI_START_WORKER=0): start "
                   "one with `python -m dashboard.worker`.")
    else:
        code = "" if status.exit_code is None else f" (last one exited with code {status.exit_code})"
        waiting = f"; {status.queued} job(s) waiting" if status.queued else ""
        st.caption(f":red[:material/circle:] No worker running{code}{waiting}.")


def store_unavailable(exc: Exception) -> None:
    """Say that the prediction store cannot be read, and why (pages keep working without it)."""
    st.warning(f"The prediction store is unavailable ({type(exc).__name__}: {exc}); stored "
               "results are not shown.", icon=":material/database:")


def condition_picker(label: str, key: str, default: Sequence[str]) -> list[str]:
    """Multiselect of registered condition ids; returns the chosen ids in registry order."""
    ids = [c.id for c in list_conditions()]
    return st.multiselect(label, ids, default=[c for c in default if c in ids], key=key)


def verdict_card(score: float, verdict: Verdict, model_name: str) -> None:
    """Score, verdict band and what the band means."""
    left, right = st.columns([1, 2])
    left.metric("Score (P(AI-generated))", f"{score:.4f}")
    right.markdown(f"### {VERDICT_ICONS.get(verdict.label, '')} {verdict.label}")
    right.caption(verdict.meaning)
    st.caption(f"Scored by `{model_name}`.")


def fpr_picker(key_strict: str, key_loose: str) -> tuple[float, float]:
    """The two false-positive rates behind the verdict bands (strict < loose)."""
    with st.expander("Verdict bands: false-positive rates"):
        left, right = st.columns(2)
        strict = left.select_slider("likely AI-generated above the threshold at FPR",
                                    STRICT_FPRS, value=REFERENCE_FPRS[0], key=key_strict,
                                    format_func=lambda f: f"{f:.1%}")
        loose = right.select_slider("likely real below the threshold at FPR", LOOSE_FPRS,
                                    value=REFERENCE_FPRS[1], key=key_loose,
                                    format_func=lambda f: f"{f:.1%}")
    return strict, loose


def reference_note(ref: ReferenceThresholds | None) -> None:
    """One line on where the verdict thresholds come from."""
    if ref is None:
        st.info("No reference run of this model on real images is in the store, so the verdict "
                "uses the 0.5 decision threshold and its false-positive rate is unknown. Score "
                "a real image set with this model (Jobs page) to calibrate the bands.",
                icon=":material/info:")
        return
    parts = ", ".join(f"{t:.3f} at {f:.0%} FPR" for f, t in sorted(ref.by_fpr.items()))
    st.caption(f"Verdict bands from {ref.n_real} real reference images "
               f"({'; '.join(ref.sources[:4])}{' ...' if len(ref.sources) > 4 else ''}): "
               f"thresholds {parts}. Likely AI-generated = above the strictest threshold; "
               "likely real = below the loosest; inconclusive in between.")


def overlay_controls(key_show: str, key_opacity: str) -> tuple[bool, float]:
    """Toggle and opacity slider for the attention overlay."""
    left, right = st.columns(2)
    show = left.toggle("Attention overlay", value=True, key=key_show)
    opacity = right.slider("Overlay opacity", 0.0, 1.0, 0.45, 0.05, key=key_opacity,
                           disabled=not show)
    return show, opacity


def patch_grid_figure(
    image: Image.Image, boxes: Sequence[Sequence[int]], weights: Sequence[float]
) -> go.Figure:
    """The image with each crop outlined; hovering a crop's centre shows its attention weight."""
    fig = go.Figure(go.Image(z=np.asarray(image.convert("RGB")), hoverinfo="skip"))
    w = np.asarray(weights, dtype=np.float64)
    share = w / w.sum() if w.size and w.sum() > 0 else w
    for left, top, right, bottom in boxes:
        fig.add_shape(type="rect", x0=left, y0=top, x1=right, y1=bottom,
                      line={"color": "rgba(255,255,255,0.8)", "width": 1})
    cx = [(b[0] + b[2]) / 2 for b in boxes]
    cy = [(b[1] + b[3]) / 2 for b in boxes]
    text = [f"patch {i}<br>attention {w[i]:.4f}<br>share {share[i]:.1%}" for i in range(len(w))]
    fig.add_trace(go.Scatter(
        x=cx, y=cy, mode="markers+text", text=[str(i) for i in range(len(cx))],
        textfont={"color": "white"}, hovertext=text, hoverinfo="text",
        marker={"size": PATCH_MARKER_PX, "symbol": "square", "opacity": 0.35,
                "color": w, "colorscale": "RdBu_r"},
    ))
    fig.update_layout(margin={"l": 0, "r": 0, "t": 0, "b": 0}, showlegend=False,
                      height=min(600, max(250, image.height)))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def scores_table(rows: pd.DataFrame) -> None:
    """A compact table of scores with a bar per row (missing values as "—")."""
    data_table(rows, hide_index=True, column_config={
        "score": st.column_config.ProgressColumn("score", min_value=0.0, max_value=1.0,
                                                 format="%.4f"),
    })
