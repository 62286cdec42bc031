"""The Start page's first-run guide: four steps, each a button, each ticked off from the store
(``db.onboarding``); the guide disappears once all are done."""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from dashboard import jobqueue, signin, state
from db.onboarding import FirstRun, first_run
from db.session import database_url, session_scope

KEY = state.GUIDE  # prefix of the guide's widget keys
PAGE_OF = {"scored": "views/score.py", "sets": "views/imagesets.py", "job": "views/jobs.py"}
# (step, FirstRun field, button label, what it does)
STEPS = (
    (
        "Score an image",
        "scored",
        "Score an image",
        "Drop a photo on the Score page: SPAI's score, verdict and attention map.",
    ),
    (
        "Import the study",
        "study",
        "Import the study",
        "The robustness study's scores: SPAI under filters, memes and screenshots.",
    ),
    (
        "Register your sets",
        "sets",
        "Register your sets",
        "A folder with real/ and fake/ subfolders becomes two labelled sets.",
    ),
    ("Run a job", "job", "Run a job", "Score your sets under conditions (meme, screenshot, ...) in the background."),
)


def first_run_guide() -> None:
    """Draw the guide unless every step is done (or the store cannot be read)."""
    try:
        url = database_url()
        with session_scope(url, readonly=True) as s:
            progress = first_run(s)
    except Exception:  # no store: the pages say so; the guide has nothing to go on
        return
    if state.scored_any():  # scored on the Score page (kept in the session, not the store)
        progress = replace(progress, scored=True)
    if progress.done:
        return
    with st.container(border=True, key=KEY + "box"):
        st.markdown("**Getting started**")
        for col, (title, field, label, what) in zip(st.columns(len(STEPS)), STEPS):
            _step(col, url, progress, title, field, label, what)


def _step(col, url: str, progress: FirstRun, title: str, field: str, label: str, what: str) -> None:
    done = getattr(progress, field)
    if field == "study" and progress.study_queued and not done:
        col.markdown(":material/hourglass_top: **Import the study**")
        col.caption("Import queued: the background worker is on it.")
        return
    col.markdown(f"{':green[:material/check_circle:]' if done else ':material/circle:'} **{title}**")
    col.caption(what)
    if not col.button(label, key=KEY + field, disabled=done, type="secondary" if done else "primary"):
        return
    if field == "study":
        with session_scope(url) as s:
            job = jobqueue.enqueue_import_study(s, actor=signin.current_actor())
        from dashboard.resources import start_worker_once  # imports torch: only when needed

        start_worker_once()
        col.success(f"Queued import job {job}; the Compare page shows the study when done.")
    else:
        st.switch_page(PAGE_OF[field])
