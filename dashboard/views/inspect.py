"""Inspect page: one image in depth (spectrum, low/high views, patches, history, conditions).

The image is decoded once per session (``resources.prepared_uploads``, keyed by its sha256);
scoring, the views and the conditions all start from that decoded image.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from dashboard import components, resources, state
from db.image_lookup import image_by_id, image_history, images_in_set, imagesets_overview
from db.session import session_scope
from robustness.apply import score_under_conditions

if TYPE_CHECKING:  # torch loads with the model, after the page's first paint
    from spai.detector import Detector, ImageResult, PreparedImage

SOURCES = ("Upload an image", "From an image set")
CONDITIONS_DEFAULT = ("jpeg/q75", "instagram-filter", "screenshot")
SPECTRUM_PX = 512  # spectra of larger images are computed on a centred crop of this side


def _pick_image() -> tuple[bytes | None, str, str | None, int | None]:
    """(bytes or None, name, sha256, store image id) of the image the user picked."""
    source = st.radio("Image", SOURCES, horizontal=True, key=state.INSPECT_SOURCE)
    if source == SOURCES[0]:
        up = st.file_uploader("Image file", key=state.INSPECT_UPLOAD)
        if up is None:
            return None, "", None, None
        data = up.getvalue()
        return data, up.name, hashlib.sha256(data).hexdigest(), None
    try:
        return _pick_from_store()
    except Exception as exc:
        components.store_unavailable(exc)
        return None, "", None, None


def _pick_from_store() -> tuple[bytes | None, str, str | None, int | None]:
    with session_scope(readonly=True) as s:
        sets = imagesets_overview(s)
        if not sets:
            st.info("The store has no image sets yet (register one on the Image sets page).")
            return None, "", None, None
        labels = {i: f"{name} ({kind}, {n} images, {nf} files)" for i, name, kind, n, nf in sets}
        set_id = st.selectbox("Image set", list(labels), format_func=labels.get, key=state.INSPECT_IMAGESET)
        images = {i: (rel, ok) for i, rel, ok in images_in_set(s, set_id)}
        if not images:
            st.info("This image set has no images.")
            return None, "", None, None
        image_id = st.selectbox(
            "Image (first 500 by path)", list(images), format_func=lambda i: images[i][0], key=state.INSPECT_IMAGE
        )
        rel, has_file = images[image_id]
        if not has_file:
            st.info(f"{rel} has no readable file here (imported scores only): its score history is shown below.")
            return None, rel, None, image_id
        try:
            path, _ = image_by_id(s, image_id)
            data = path.read_bytes()  # hashed here: the caches are keyed by the bytes shown
            return data, rel, hashlib.sha256(data).hexdigest(), image_id
        except (KeyError, OSError) as exc:
            st.error(f"{rel}: {exc}")
            return None, rel, None, image_id


def _history(sha: str | None, image_id: int | None) -> None:
    st.subheader("Score history")
    if sha is None and image_id is None:
        return
    try:
        with session_scope(readonly=True) as s:
            frame = image_history(s, sha256=sha, image_id=image_id)
    except Exception as exc:  # the store is down: the rest of the page still works
        components.store_unavailable(exc)
        return
    if frame.empty:
        st.caption("No stored predictions for this image (score a set containing it on the Jobs page).")
        return
    components.scores_table(frame)


def _spectral(det: Detector, prepared: PreparedImage, pred: ImageResult) -> None:
    from spai.visualize import center_crop, log_spectrum, low_high_views, patch_table, tensor_to_image, to_grey_image

    model_input = tensor_to_image(prepared.tensor)
    st.subheader("Spectrum")
    left, right = st.columns(2)
    left.image(model_input, caption=f"model input, {model_input.width}x{model_input.height}")
    spec_src = center_crop(model_input, SPECTRUM_PX)
    right.image(to_grey_image(log_spectrum(spec_src)), caption="centred log-magnitude spectrum (DC at the centre)")
    table = patch_table(pred.boxes, pred.attention, pred.similarity, grid_cols=pred.grid_cols)
    st.subheader("Patches")
    st.plotly_chart(components.patch_grid_figure(model_input, pred.boxes, pred.attention_mean), key=state.INSPECT_GRID)
    components.data_table(table, hide_index=True)
    radius_default = det.config.model.fre.masking_radius
    patch = st.selectbox(
        "Patch for the low/high-pass views",
        list(table["patch"]),
        index=int(np.argmax(table["attention"])),
        key=state.INSPECT_PATCH,
        format_func=lambda i: f"patch {i} (attention {table['attention'][i]:.4f})",
    )
    radius = st.slider(
        f"Masking radius (the model uses {radius_default})", 0, 112, radius_default, key=state.INSPECT_RADIUS
    )
    crop = model_input.crop(tuple(pred.boxes[patch]))
    low, high = low_high_views(crop, radius)
    cols = st.columns(3)
    cols[0].image(crop, caption=f"patch {patch}")
    cols[1].image(low, caption=f"low-pass, r < {radius}")
    cols[2].image(high, caption=f"high-pass, r >= {radius}")


def _conditions(det: Detector, original: PreparedImage, sha: str) -> None:
    from spai.visualize import center_crop, log_spectrum, to_grey_image

    st.subheader("Under each condition")
    picked = components.condition_picker("Conditions", state.INSPECT_CONDITIONS, CONDITIONS_DEFAULT)
    with st.spinner(f"Scoring {len(picked)} variants in one batch ..."):
        results = score_under_conditions(det, original.image, sha, picked)
    for r in results:
        if r.image is None:  # one failing condition must not hide the others
            st.error(f"{r.condition_id}: {r.error}")
            continue
        score = components.fmt_value(r.score, ".4f") if r.error is None else f"not scored ({r.error})"
        left, right = st.columns(2)
        left.image(r.image, caption=f"{r.condition_id}, {r.image.width}x{r.image.height}, score {score}")
        right.image(
            to_grey_image(log_spectrum(center_crop(r.image, SPECTRUM_PX))), caption=f"{r.condition_id}: spectrum"
        )


st.title("Inspect an image")
det, problem = resources.load_active_detector()
if det is None:
    st.error(problem, icon=":material/error:")
    st.stop()
data, name, sha, image_id = _pick_image()
prepared = pred = None
if data is not None:
    prepared = resources.prepared_uploads(det, "inspect", {sha: data})[sha]
    if isinstance(prepared, str):  # cannot be decoded: say why
        st.error(f"{name}: {prepared}", icon=":material/broken_image:")
        prepared = None
if prepared is not None:
    pred = resources.score_prepared(det, prepared, sha, name)
    if not pred.ok:
        st.error(f"{name}: {pred.error}", icon=":material/broken_image:")
    else:
        st.metric(f"Score by {det.info.name}", f"{pred.score:.4f}")
        _spectral(det, prepared, pred)
_history(sha, image_id)
if pred is not None and pred.ok:
    _conditions(det, prepared, sha)
