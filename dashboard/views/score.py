"""Score page: upload images -> score, verdict band, attention overlay, patch grid, "what if".

Each upload is decoded once per session (``resources.prepared_uploads``, keyed by its sha256):
scoring, the overlay and the what-if variants all start from that one decoded image, and the
variants are scored as one batch (``Detector.score_batch``).

Verdict bands come from the model's reference reals: its runs on real image sets in the store
(at least ``MIN_REFERENCE_REALS``), else the calibration shipped with the weights
(``spai.calibration``, e.g. the demo model's); without either the page says what is missing.
"""

from __future__ import annotations

import hashlib
import math
from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from dashboard import components, resources, state
from db.session import database_url, session_scope
from db.stored_models import store_model_ids
from db.verdicts import (
    MIN_REFERENCE_REALS,
    ReferenceThresholds,
    reference_real_count,
    reference_thresholds,
    verdict,
)
from robustness.apply import score_under_conditions
from spai import calibration
from spai.overlay import overlay_image, overlay_scale

if TYPE_CHECKING:  # torch loads with the model, after the page's first paint
    from PIL import Image

    from spai.detector import Detector, ImageResult, PreparedImage

MAX_UPLOAD_MB = 50  # per file; the server's maxUploadSize says the same
WHATIF_DEFAULT = (
    "jpeg/q75",
    "webp/q75",
    "social/1080-q80",
    "resize/x0.5",
    "instagram-filter",
    "meme",
    "screenshot",
    "resample/x0.5-x2-lanczos",
)
THUMB_PX = 220


def _reference_count(url: str, model_sha: str, origin: str) -> int:
    """Real images this model scored unmodified in the store (one COUNT, not cached, so a
    reference run finished a moment ago is seen on the next rerun)."""
    with session_scope(url, readonly=True) as s:
        return reference_real_count(s, store_model_ids(s, sha256=model_sha, origin=origin))


@st.cache_data(ttl=600, show_spinner=False)
def _reference(url: str, model_sha: str, origin: str, fprs: tuple[float, float], n_real: int):
    """Verdict thresholds for the model from the store at ``url`` (cached per count of
    reference reals, so new reference scores are used at once)."""
    with session_scope(url, readonly=True) as s:
        ids = store_model_ids(s, sha256=model_sha, origin=origin)
        return reference_thresholds(s, ids, fprs)


def _shipped(cal: calibration.Calibration | None, fprs: tuple[float, float]) -> ReferenceThresholds | None:
    """The calibration recorded with the weights file (same sha256), as verdict thresholds."""
    if cal is None:
        return None
    by_fpr = {f: (math.inf if cal.thresholds.get(f) is None else cal.thresholds[f]) for f in fprs}
    return ReferenceThresholds(by_fpr, cal.n_real, (f"shipped with the model: {cal.source}",))


def _what_if(det: Detector, prepared: PreparedImage, sha: str, conditions: list[str]) -> list[tuple]:
    """The image under each condition (seeded by the image's sha256), all variants scored as
    one batch: rows of (condition, score, error, thumbnail)."""
    bar = st.progress(0.0, text="Making the variants ...")

    def made(i: int, cid: str) -> None:
        bar.progress((i + 1) / len(conditions), text=f"{i + 1}/{len(conditions)}: {cid}")

    with st.spinner(f"Scoring {len(conditions)} variants in one batch ..."):
        results = score_under_conditions(det, prepared.image, sha, conditions, on_variant=made)
    bar.empty()
    return [(r.condition_id, r.score, r.error, _thumbnail(r.image)) for r in results]


def _thumbnail(img: Image.Image | None) -> Image.Image | None:
    if img is None:
        return None
    thumb = img.copy()
    thumb.thumbnail((THUMB_PX, THUMB_PX))
    return thumb


def _show_what_if(det: Detector, prepared: PreparedImage, sha: str, score: float) -> None:
    st.markdown(
        "**What if** the image were re-shared? The same image under robustness conditions, scored by the same model."
    )
    picked = components.condition_picker("Conditions", state.item_key("score", "whatif", sha[:12]), WHATIF_DEFAULT)
    if st.button("Score under these conditions", key=state.item_key("score", "run", sha[:12]), disabled=not picked):
        state.store_whatif_results(det.info.sha256, sha, _what_if(det, prepared, sha, picked))
    rows = state.whatif_results(det.info.sha256, sha)
    if not rows:
        return
    table = pd.DataFrame(
        [{"condition": "original", "score": score, "change": 0.0, "error": None}]
        + [{"condition": c, "score": s, "change": None if s is None else s - score, "error": e} for c, s, e, _ in rows]
    )
    components.scores_table(table)
    cols = st.columns(4)
    for i, (cid, s, err, thumb) in enumerate(r for r in rows if r[3] is not None):
        cols[i % 4].image(thumb, caption=f"{cid}: {s:.3f}" if s is not None else f"{cid}: {err}")


def _show_score(det: Detector, name: str, sha: str, prepared: PreparedImage | str, ref) -> ImageResult | None:
    """Score and verdict of one upload (or why it has none); its prediction when scored."""
    if isinstance(prepared, str):  # cannot be decoded: say why
        st.error(f"{name}: {prepared}", icon=":material/broken_image:")
        return None
    pred = resources.score_prepared(det, prepared, sha, name)
    if not pred.ok:
        st.error(f"{name}: {pred.error}", icon=":material/broken_image:")
        return None
    st.caption(
        f"sha256 {sha[:16]}... | {pred.width}x{pred.height} px | {pred.num_patches} patches | {pred.seconds:.2f} s"
    )
    components.verdict_card(pred.score, verdict(pred.score, ref), det.info.name)
    return pred


def _show_details(det: Detector, sha: str, prepared: PreparedImage, pred: ImageResult) -> None:
    """Overlay, patch grid and what-if of a scored upload."""
    show, opacity, mode = components.overlay_controls(
        state.item_key("score", "overlay", sha[:12]),
        state.item_key("score", "opacity", sha[:12]),
        state.item_key("score", "scale", sha[:12]),
    )
    from spai.visualize import tensor_to_image

    model_input = tensor_to_image(prepared.tensor)
    left, right = st.columns(2)
    if show:
        scale = overlay_scale(pred.attention_mean, mode)
        shown, _ = overlay_image(model_input, pred.boxes, pred.attention_mean, opacity=opacity, scale=scale)
        left.image(shown, caption="model input with patch attention")
        left.plotly_chart(components.attention_colorbar(scale), key=state.item_key("score", "colorbar", sha[:12]))
        left.caption(f"Attention colours, {scale.describe()}.")
    else:
        left.image(model_input, caption="model input")
    right.plotly_chart(
        components.patch_grid_figure(
            model_input, pred.boxes, pred.attention_mean, overlay_scale(pred.attention_mean, mode)
        ),
        key=state.item_key("score", "grid", sha[:12]),
    )
    _show_what_if(det, prepared, sha, pred.score)


st.title("Score images")
# The uploader comes before the model: on a cold server a file can be dropped while torch and
# the model load (under the "Loading the model" spinner).
uploads = st.file_uploader(
    "Images (drag and drop; one or many)",
    accept_multiple_files=True,
    key=state.SCORE_UPLOADS,
    max_upload_size=MAX_UPLOAD_MB,
)
det, problem = resources.load_active_detector()
if det is None:
    st.error(problem, icon=":material/error:")
    st.stop()
n_stored: int | None = None
try:
    n_stored = _reference_count(database_url(), det.info.sha256, det.info.origin)
except Exception as exc:  # the store is down: scoring still works, maybe uncalibrated
    components.store_unavailable(exc)
try:
    shipped_cal = calibration.read_for(det.info.path, det.info.sha256)
except ValueError as exc:  # a damaged file next to the weights: say so, score uncalibrated
    shipped_cal = None
    st.warning(f"{exc}; its thresholds are not used.", icon=":material/warning:")
n_ref = n_stored if n_stored and n_stored >= MIN_REFERENCE_REALS else (shipped_cal.n_real if shipped_cal else None)
fprs = components.fpr_picker(state.SCORE_FPR_STRICT, state.SCORE_FPR_LOOSE, n_ref)
ref = None
if n_stored is not None and n_stored >= MIN_REFERENCE_REALS:
    ref = _reference(database_url(), det.info.sha256, det.info.origin, fprs, n_stored)
if ref is None:
    ref = _shipped(shipped_cal, fprs)
components.reference_note(ref, n_stored)
if not uploads:
    st.caption("Nothing uploaded yet. Scores are P(AI-generated) from the active model.")
files = [(u.name, u.getvalue()) for u in uploads or []]
shas = [hashlib.sha256(data).hexdigest() for _, data in files]
fits = [len(data) <= MAX_UPLOAD_MB * 1024 * 1024 for _, data in files]
prepared = resources.prepared_uploads(  # decoded once per upload and session
    det, "score", {sha: data for (_, data), sha, ok in zip(files, shas, fits) if ok}
)
scored = []  # every score is shown before any upload's overlay and grid are drawn
for (name, data), sha, ok in zip(files, shas, fits):
    box = st.container(border=True)
    with box:
        st.subheader(name)
        if not ok:
            st.error(f"{name}: file too large ({len(data) / 2**20:.1f} MB > {MAX_UPLOAD_MB} MB)")
        elif (pred := _show_score(det, name, sha, prepared[sha], ref)) is not None:
            scored.append((box, sha, pred))
for box, sha, pred in scored:
    with box:
        _show_details(det, sha, prepared[sha], pred)
