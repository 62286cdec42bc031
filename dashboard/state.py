"""The only module that names ``st.session_state`` keys: typed getters/setters and widget keys.

Widget keys are page-prefixed (``"score.uploads"``); per-item widgets get ``item_key(...)``.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

# --- widget keys (page.widget) ----------------------------------------------------------------
SCORE_UPLOADS = "score.uploads"
SCORE_FPR_STRICT = "score.fpr_strict"
SCORE_FPR_LOOSE = "score.fpr_loose"
INSPECT_SOURCE = "inspect.source"
INSPECT_UPLOAD = "inspect.upload"
INSPECT_IMAGESET = "inspect.imageset"
INSPECT_IMAGE = "inspect.image"
INSPECT_RADIUS = "inspect.radius"
INSPECT_PATCH = "inspect.patch"
INSPECT_CONDITIONS = "inspect.conditions"
MODELS_CHOICE = "models.choice"
MODELS_STORED = "models.stored"
MODELS_SET_DEFAULT = "models.set_default"
MODELS_CLEAR_DEFAULT = "models.clear_default"

# --- non-widget state -------------------------------------------------------------------------
_PREDICTIONS = "app.predictions"  # (model sha, image sha) -> Prediction
_WHATIF = "score.whatif_results"  # (model sha, image sha) -> list of (condition, score, error)
_PREPARED = "app.prepared"  # page -> {(model input key, image sha): PreparedImage or error}
_STORE_BUSY_TICKS = "app.store_busy_ticks"  # runs of the retry timer since the store was busy


def item_key(prefix: str, name: str, item: str) -> str:
    """Key of a widget repeated per item (e.g. each uploaded image): ``prefix.name.item``."""
    return f"{prefix}.{name}.{item}"


def cached_prediction(model_sha: str, image_sha: str) -> Any | None:
    """A prediction already made in this session for (model, image bytes)."""
    return st.session_state.setdefault(_PREDICTIONS, {}).get((model_sha, image_sha))


def scored_any() -> bool:
    """Whether this session has scored an image on the Score page."""
    return bool(st.session_state.get(_PREDICTIONS))


def store_prediction(model_sha: str, image_sha: str, pred: Any) -> None:
    st.session_state.setdefault(_PREDICTIONS, {})[(model_sha, image_sha)] = pred


def whatif_results(model_sha: str, image_sha: str) -> list[tuple[str, Any]] | None:
    """(condition id, Prediction) pairs from the last "what if" run for this image."""
    return st.session_state.setdefault(_WHATIF, {}).get((model_sha, image_sha))


def store_whatif_results(model_sha: str, image_sha: str, rows: list[tuple[str, Any]]) -> None:
    st.session_state.setdefault(_WHATIF, {})[(model_sha, image_sha)] = rows


def prepared_inputs(page: str) -> dict[tuple, Any]:
    """The decoded uploads a page holds (see ``resources.prepared_uploads``)."""
    return st.session_state.setdefault(_PREPARED, {}).get(page, {})


def keep_prepared_inputs(page: str, entries: dict[tuple, Any]) -> None:
    """Replace a page's decoded uploads (entries of uploads no longer shown are dropped)."""
    st.session_state.setdefault(_PREPARED, {})[page] = entries


def store_busy_tick() -> int:
    """Count one more run of the "store busy" retry timer; returns the count."""
    st.session_state[_STORE_BUSY_TICKS] = st.session_state.get(_STORE_BUSY_TICKS, 0) + 1
    return st.session_state[_STORE_BUSY_TICKS]


def clear_store_busy() -> None:
    """The page ran: forget an earlier "store busy" retry."""
    st.session_state.pop(_STORE_BUSY_TICKS, None)
