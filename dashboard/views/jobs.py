"""Jobs: launch inference runs, watch the queue live, cancel, read logs and failures. With
sign-in, only a job's owner or an administrator may cancel, retry or delete it (the job queue
refuses; the page shows why)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import jobqueue, links, signin, state
from dashboard.components import MISSING, condition_picker, data_table
from db import imageset_stats, removal
from db.models import ORIGINAL
from db.owners import NotAllowed
from db.session import database_url, session_scope

KEY = state.JOBS  # page prefix of this page's widget keys
ACTIVE = ["queued", "running"]
RECENT = 100  # jobs listed in the history table
ACTIVE_LABEL = "{name} (active model)"  # the active model, registered when a job needs it
NO_REDO, ALL_ERRORS = "none (keep them)", "all errors"  # choices of "Error rows to compute again"


def _model_options(url: str) -> dict[str, tuple[int | None, str, str | None]]:
    """Label -> (model id or None, weights, cfg): the active model first (registered when a job
    needs it), then the other registered models with a weights file."""
    from dashboard.resources import active_model  # imports torch: only when needed

    with session_scope(url, readonly=True) as s:
        models = imageset_stats.runnable_models(s)
    options = {str(r.name): (int(r.id), str(r.path), None) for r in models.itertuples()}
    choice = active_model()
    if not choice.exists:
        return options
    weights = str(Path(choice.weights).resolve())
    same = [n for n, (_, path, _) in options.items() if path == weights]
    label = ACTIVE_LABEL.format(name=same[0] if same else Path(weights).stem)
    return {label: (None, choice.weights, choice.cfg)} | {n: o for n, o in options.items() if n not in same}


def _launch_form(url: str) -> None:
    with session_scope(url, readonly=True) as s:
        sets = imageset_stats.overview(s)
    with st.expander("Launch an inference run (model x image sets x conditions)", expanded=True):
        models = _model_options(url)
        if not models:
            st.info(
                "No model to run: the active model's file is missing and no other model "
                "with a weights file is registered."
            )
            return
        sets = sets[sets["with_file"] > 0]
        if sets.empty:
            st.info("No image set with files yet: register one on the Image sets page.")
            return
        model = st.selectbox("Model", list(models), key=KEY + "model")
        chosen = st.multiselect("Image sets", list(sets["name"]), key=KEY + "sets")
        with_original = st.checkbox("Original images", value=True, key=KEY + "original")
        conds = condition_picker("Conditions (derived files are made first)", KEY + "conditions", [])
        conditions = [ORIGINAL] * with_original + conds
        n = len(chosen) * len(conditions)
        if st.button(f"Queue {n} job(s)", key=KEY + "launch", type="primary", disabled=not n):
            _, weights, cfg = models[model]
            set_ids = dict(zip(sets["name"], sets["id"]))
            with session_scope(url) as s:
                ids = jobqueue.enqueue_score_set(
                    s,
                    weights=weights,
                    cfg=cfg,
                    imageset_ids=[int(set_ids[c]) for c in chosen],
                    conditions=conditions,
                    actor=signin.current_actor(),
                )
            _start_worker()
            st.success(f"Queued job(s) {', '.join(map(str, ids))}.")


def _start_worker() -> None:
    from dashboard.resources import start_worker_once  # imports torch: only when needed

    start_worker_once()


def _progress(job: jobqueue.JobView) -> float:
    return min(job.progress_done / job.progress_total, 1.0) if job.progress_total else 0.0


def _act(url: str, action, row_id: int, **kwargs) -> bool:
    """Run ``action(session, row_id, actor=..., **kwargs)`` (a job's cancel, retry or delete,
    a run's delete); a refusal, or a row gone or still in use, is kept to be shown."""
    try:
        with session_scope(url) as s:
            action(s, row_id, actor=signin.current_actor(), **kwargs)
    except (NotAllowed, KeyError, ValueError) as exc:
        state.note(state.JOBS_REFUSED, str(exc).strip("'\""))
        return False
    state.note(state.JOBS_REFUSED, None)
    return True


@st.fragment(run_every="2s")
def _live(url: str) -> None:
    """Queued and running jobs with progress and a cancel button, then every recent job
    (refreshes every 2 s)."""
    with session_scope(url, readonly=True) as s:
        jobs = jobqueue.recent(s, limit=RECENT)
        names = jobqueue.describe(s, jobs)
    active = [j for j in jobs if j.status in ACTIVE]
    if refused := state.noted(state.JOBS_REFUSED):
        st.error(refused, icon=":material/block:")
    st.subheader(f"Active jobs ({len(active)})")
    if not active:
        st.caption("Nothing queued or running.")
    for job in active:
        left, right = st.columns([5, 1])
        note = " · cancelling" if job.cancel_requested else ""
        left.progress(
            _progress(job), text=f"#{job.id} {names[job.id]}: {job.status} {jobqueue.progress_text(job)}{note}"
        )
        right.button(
            "Cancel",
            key=f"{KEY}cancel.{job.id}",
            disabled=job.cancel_requested,
            on_click=_act,
            args=(url, jobqueue.cancel, job.id),
        )  # before the rerun
    st.subheader("All jobs")
    if not jobs:
        st.caption("No jobs yet.")
        return
    table = pd.DataFrame(
        [
            {
                "id": j.id,
                "job": names[j.id],
                "status": j.status,
                "progress": jobqueue.progress_text(j),
                "created": j.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                "finished": j.finished_at.strftime("%H:%M:%S") if j.finished_at else "",
                "attempts": j.attempts,
                "owner": j.owner or MISSING,
            }
            for j in jobs
        ]
    )
    if not signin.enabled():  # without sign-in nobody owns anything
        table = table.drop(columns=["owner"])
    data_table(table, hide_index=True, key=KEY + "history")
    _details(url, jobs, names)


def _details(url: str, jobs: list[jobqueue.JobView], names: dict[int, str]) -> None:
    by_id = {j.id: j for j in jobs}
    job = by_id[
        st.selectbox(
            "Job details", list(by_id), key=KEY + "detail", format_func=lambda i: f"#{i} {names[i]}: {by_id[i].status}"
        )
    ]
    run_id = (job.result or {}).get("run_id")
    if job.kind == "infer" and job.status == "done" and run_id is not None:
        st.markdown(f"[Open run {run_id} in Compare]({links.compare_url_for_run(int(run_id))})")
    st.json({"params": job.params, "result": job.result or {}, "worker": job.worker_id or ""}, expanded=False)
    if job.status == "failed":
        st.error(f"Job {job.id} failed.", icon=":material/error:")
        st.code(job.traceback or "(no traceback recorded)", language="text")
    st.code(job.log_tail or "(empty log)", language="text")
    _retry(url, job)
    if job.status not in ACTIVE and st.button(
        "Delete this job", key=KEY + "delete", help="Its runs and image sets stay"
    ):
        _act(url, removal.delete_job, job.id)
        st.rerun()
    if (
        job.kind == "infer"
        and run_id is not None
        and job.status not in ACTIVE
        and st.button(f"Delete run {run_id} and its scores", key=KEY + "delete_run")
    ):
        _act(url, removal.delete_run, int(run_id))
        st.rerun()


def _retry(url: str, job: jobqueue.JobView) -> None:
    """Resume a failed or cancelled job; redo error rows (all, or one kind) of a finished one."""
    if job.status not in ("failed", "cancelled", "done"):
        return
    with session_scope(url, readonly=True) as s:
        kinds = jobqueue.error_kinds(s, job.id)
    if job.status == "done" and not kinds:
        return
    redo = NO_REDO
    if kinds:
        redo = st.selectbox(
            "Error rows to compute again",
            [NO_REDO, ALL_ERRORS, *kinds],
            index=1 if job.status == "done" else 0,
            key=KEY + "redo",
            format_func=lambda k: f"{k} ({kinds[k]})" if k in kinds else k,
        )
    if st.button("Retry (resume)", key=KEY + "retry"):
        if _act(
            url,
            jobqueue.retry,
            job.id,
            redo_errors=redo != NO_REDO,
            error_kind=None if redo in (NO_REDO, ALL_ERRORS) else redo,
        ):
            _start_worker()
        st.rerun()


url = database_url()
st.title("Jobs")
_launch_form(url)
_live(url)
