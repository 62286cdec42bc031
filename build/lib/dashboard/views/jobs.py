"""Jobs: launch inference runs, watch the queue live, cancel, read logs and failures."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import jobqueue
from dashboard.components import condition_picker
from db import imageset_stats
from db.models import ORIGINAL
from db.session import database_url, session_scope

KEY = "jobs."  # page prefix of this page's widget keys
ACTIVE = ["queued", "running"]
RECENT = 100  # jobs listed in the history table


def _launch_form(url: str) -> None:
    with session_scope(url, readonly=True) as s:
        models = imageset_stats.runnable_models(s)
        sets = imageset_stats.overview(s)
    with st.expander("Launch an inference run (model x image sets x conditions)",
                     expanded=True):
        if models.empty:
            st.info("No model with a weights file is registered yet.")
            if st.button("Register the active model", key=KEY + "register_model"):
                _register_active(url)
            return
        sets = sets[sets["with_file"] > 0]
        if sets.empty:
            st.info("No image set with files yet: register one on the Image sets page.")
            return
        model = st.selectbox("Model", list(models["name"]), key=KEY + "model")
        chosen = st.multiselect("Image sets", list(sets["name"]), key=KEY + "sets")
        with_original = st.checkbox("Original images", value=True, key=KEY + "original")
        conds = condition_picker("Conditions (derived files are made first)",
                                 KEY + "conditions", [])
        combos = [(n, c) for n in chosen for c in [ORIGINAL] * with_original + conds]
        if st.button(f"Queue {len(combos)} job(s)", key=KEY + "launch", type="primary",
                     disabled=not combos):
            model_id = int(models.loc[models["name"] == model, "id"].iloc[0])
            set_ids = dict(zip(sets["name"], sets["id"]))
            with session_scope(url) as s:
                ids = [jobqueue.enqueue_infer(s, model_id=model_id,
                                              imageset_id=int(set_ids[n]), condition_id=c)
                       for n, c in combos]
            _start_worker()
            st.success(f"Queued job(s) {', '.join(map(str, ids))}.")


def _register_active(url: str) -> None:
    from dashboard.resources import active_model  # imports torch: only when needed

    choice = active_model()
    if not choice.exists:
        st.error(f"The active model's file does not exist: {choice.weights}")
        return
    with session_scope(url) as s:
        jobqueue.register_model(s, choice.weights, cfg=choice.cfg, origin=_origin(choice.weights))
    st.rerun()


def _origin(weights: str) -> str:
    from spai.detector import DEMO_WEIGHTS, OFFICIAL_WEIGHTS

    path = Path(weights).resolve()
    if path == OFFICIAL_WEIGHTS.resolve():
        return "official"
    return "demo" if path.parent == DEMO_WEIGHTS.parent.resolve() else "trained"


def _start_worker() -> None:
    from dashboard.resources import start_worker_once  # imports torch: only when needed

    start_worker_once()


def _progress(job: jobqueue.JobView) -> float:
    return min(job.progress_done / job.progress_total, 1.0) if job.progress_total else 0.0


def _describe(job: jobqueue.JobView) -> str:
    p = job.params
    parts = [f"{k}={p[k]}" for k in ("model_id", "imageset_id", "condition_id", "source")
             if p.get(k) is not None]
    return f"#{job.id} {job.kind} ({', '.join(parts)})"


@st.fragment(run_every="2s")
def _live(url: str) -> None:
    """Queued and running jobs with progress and a cancel button (refreshes every 2 s)."""
    with session_scope(url, readonly=True) as s:
        active = jobqueue.recent(s, statuses=ACTIVE)
    st.subheader(f"Active jobs ({len(active)})")
    if not active:
        st.caption("Nothing queued or running.")
    for job in active:
        left, right = st.columns([5, 1])
        total = job.progress_total if job.progress_total is not None else "?"
        note = " · cancelling" if job.cancel_requested else ""
        left.progress(_progress(job), text=f"{_describe(job)}: {job.status} "
                      f"{job.progress_done}/{total}{note}")
        if right.button("Cancel", key=f"{KEY}cancel.{job.id}", disabled=job.cancel_requested):
            with session_scope(url) as s:
                jobqueue.cancel(s, job.id)
            st.rerun(scope="fragment")


def _history(url: str) -> None:
    with session_scope(url, readonly=True) as s:
        jobs = jobqueue.recent(s, limit=RECENT)
    st.subheader("All jobs")
    if not jobs:
        st.caption("No jobs yet.")
        return
    table = pd.DataFrame([{"id": j.id, "kind": j.kind, "status": j.status,
                           "progress": f"{j.progress_done}/{j.progress_total or '?'}",
                           "created": j.created_at, "finished": j.finished_at,
                           "attempts": j.attempts, "job": _describe(j)} for j in jobs])
    st.dataframe(table, hide_index=True, key=KEY + "history")
    by_id = {j.id: j for j in jobs}
    job = by_id[st.selectbox("Job details", list(by_id), key=KEY + "detail",
                             format_func=lambda i: f"{_describe(by_id[i])}: {by_id[i].status}")]
    st.json({"params": job.params, "result": job.result, "worker": job.worker_id},
            expanded=False)
    if job.status == "failed":
        st.error(f"Job {job.id} failed.", icon=":material/error:")
        st.code(job.traceback or "(no traceback recorded)", language="text")
    st.code(job.log_tail or "(empty log)", language="text")
    if job.status in ("failed", "cancelled") and st.button("Retry (resume)", key=KEY + "retry"):
        with session_scope(url) as s:
            jobqueue.retry(s, job.id)
        _start_worker()
        st.rerun()


url = database_url()
st.title("Jobs")
_launch_form(url)
_live(url)
_history(url)
