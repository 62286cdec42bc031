"""The only module that names ``st.session_state`` keys: typed getters/setters and widget keys.

Widget keys are page-prefixed (``"score.uploads"``); per-item widgets get ``item_key(...)``.
Pages with many widgets build their keys from their prefix here (``state.COMPARE + "metric"``);
every key a page also reads or writes outside its widget is a named constant, and only the
functions below touch ``st.session_state``.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

# --- page prefixes of widget keys -------------------------------------------------------------
COMPARE = "compare."
IMAGESETS = "imagesets."
JOBS = "jobs."
TRAIN = "train."
GUIDE = "guide."

# --- widget keys (page.widget) ----------------------------------------------------------------
APP_START_WORKER = "app.start_worker"
COMPARE_MODELS = COMPARE + "models"
COMPARE_TABLE_MODEL = COMPARE + "table_model"
COMPARE_ROC_CONDITION = COMPARE + "roc_condition"
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
INSPECT_GRID = "inspect.grid"
MODELS_CHOICE = "models.choice"
MODELS_STORED = "models.stored"
MODELS_SET_DEFAULT = "models.set_default"
MODELS_CLEAR_DEFAULT = "models.clear_default"
MODELS_DELETE = "models.delete"  # delete the picked stored model (owner or administrator)

# --- non-widget state -------------------------------------------------------------------------
_PREDICTIONS = "app.predictions"  # (model sha, image sha) -> ImageResult
_WHATIF = "score.whatif_results"  # (model sha, image sha) -> list of (condition, score, error)
_PREPARED = "app.prepared"  # page -> {(model input key, image sha): PreparedImage or error}
_STORE_BUSY_TICKS = "app.store_busy_ticks"  # runs of the retry timer since the store was busy
COMPARE_IMPORT_JOB = COMPARE + "import_job"  # the study import job the Compare page watches
COMPARE_LINK = COMPARE + "link"  # the (?run, ?model) link last applied to the widgets
IMAGESETS_JOB = IMAGESETS + "job"  # the registration job the Image sets page watches
IMAGESETS_SHOWN = IMAGESETS + "shown"  # the finished job whose sets the overview was refreshed for
TRAIN_JOB = TRAIN + "job"  # the training run the Train page shows first
JOBS_REFUSED = JOBS + "refused"  # why the last cancel, retry or delete was refused


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
    """(condition id, ImageResult) pairs from the last "what if" run for this image."""
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


def watched_job(key: str) -> int | None:
    """The job id a page remembers under ``key`` (one of the ``*_JOB`` constants), or None."""
    return st.session_state.get(key)


def watch_job(key: str, job_id: int | None) -> None:
    """Remember ``job_id`` under ``key``; None forgets it."""
    if job_id is None:
        st.session_state.pop(key, None)
    else:
        st.session_state[key] = job_id


def note(key: str, message: str | None) -> None:
    """Keep ``message`` under ``key`` to show on later runs (None forgets it)."""
    if message is None:
        st.session_state.pop(key, None)
    else:
        st.session_state[key] = message


def noted(key: str) -> str | None:
    """The message kept under ``key``, or None."""
    return st.session_state.get(key)


def first_time(key: str, token: Any) -> bool:
    """True once per new ``token`` under ``key`` (e.g. a link's first render), then False until
    the token changes."""
    if st.session_state.get(key) == token:
        return False
    st.session_state[key] = token
    return True


def set_widget(key: str, value: Any) -> None:
    """Set a keyed widget's value before it is drawn (e.g. from a link)."""
    st.session_state[key] = value


def default_widget(key: str, value: Any) -> None:
    """Give a keyed widget ``value`` unless it has one already."""
    st.session_state.setdefault(key, value)


def drop_widget_value_unless(key: str, allowed: Any) -> None:
    """Forget a widget's value that is no longer among ``allowed`` (it starts afresh)."""
    if key in st.session_state and st.session_state[key] not in allowed:
        del st.session_state[key]


def reset_widget_on_change(key: str, default: Any, context: Any) -> None:
    """Set a widget to ``default`` when it has no value or ``context`` (what its options and
    default depend on) changed since the last run."""
    marker = key + ".context"
    if st.session_state.get(marker) != context or key not in st.session_state:
        st.session_state[key] = default
        st.session_state[marker] = context
