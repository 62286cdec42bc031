"""Dashboard entrypoint: ``streamlit run dashboard/app.py`` (from the repository root).

Only the frame lives here: page config, sign-in when ``[auth]`` is configured (every page
requires it; dashboard.signin), else the bind rule (a non-loopback server serves nothing unless
SPAI_ALLOW_UNAUTHENTICATED=1, and then a banner on every page; dashboard.access), navigation with sections, the shared sidebar (which model is active, DEMO badge) and the
background worker start. Each page is a file in ``views/``; a page whose file does not exist yet
is simply not listed. Nothing here imports torch: the frame and a page paint first, torch and
the model load after (``resources.preload_in_background``, the pages' model spinner).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from sqlalchemy.exc import OperationalError
from streamlit.navigation.page import StreamlitPage

try:  # `streamlit run` puts dashboard/, not the repository, on the path: the project is installed
    import dashboard  # noqa: F401
except ModuleNotFoundError:
    st.error(
        "The project is not installed in this environment: run `pip install -e .` in the "
        "repository (the README's set-up command does), then `spai-dashboard`."
    )
    st.stop()

from dashboard import access, components, resources, signin, state
from db.session import store_busy

VIEWS = Path(__file__).resolve().parent / "views"
STORE_BUSY_RETRY_S = 3  # while the store's write lock is held elsewhere, the page retries this often
# (section, file in views/, title, icon); the first existing page is the default, served at
# "/" (Streamlit ignores a default page's url_path), every other page at /<file stem>.
PAGES = (
    ("Start", "home.py", "Start", ":material/home:"),
    ("Detect", "score.py", "Score", ":material/fact_check:"),
    ("Detect", "inspect.py", "Inspect", ":material/biotech:"),
    ("Data", "imagesets.py", "Image sets", ":material/photo_library:"),
    ("Data", "jobs.py", "Jobs", ":material/pending_actions:"),
    ("Study", "compare.py", "Compare", ":material/table_chart:"),
    ("Models", "models.py", "Models", ":material/model_training:"),
    ("Models", "train.py", "Train", ":material/school:"),
)


def navigation() -> StreamlitPage:
    sections: dict[str, list[StreamlitPage]] = {}
    for section, file, title, icon in PAGES:
        path = VIEWS / file
        if path.is_file():
            sections.setdefault(section, []).append(
                st.Page(path, title=title, icon=icon, url_path=Path(file).stem, default=not sections)
            )
    return st.navigation(sections)


def sidebar(worker_problem: str | None) -> None:
    choice = resources.active_model()
    components.model_badge(Path(choice.weights).name, choice.origin, exists=choice.exists)
    if not choice.exists:
        st.sidebar.caption(resources.NO_MODEL_MESSAGE)
    with st.sidebar:
        worker_panel(worker_problem)


@st.fragment(run_every="5s")
def worker_panel(problem: str | None) -> None:
    """Whether a worker is alive and what it runs; a dead one is restarted when jobs wait
    (refreshes every 5 s)."""
    try:
        status = resources.worker_status()
    except Exception as exc:  # the store is unreachable: the pages say so themselves
        st.caption(f"Worker status unknown: the store cannot be read ({type(exc).__name__}).")
        if problem:
            st.warning(problem, icon=":material/warning:")
        return
    if not status.alive and not status.starting and status.enabled and status.queued:
        problem = resources.start_worker_once() or problem
    components.worker_badge(status)
    if (
        not (problem or status.alive or status.starting)
        and status.enabled
        and st.button("Start the worker", key=state.APP_START_WORKER)
    ):
        problem = resources.start_worker_once()
        if not problem:
            st.rerun(scope="fragment")
    if problem:
        st.warning(problem, icon=":material/warning:")


@st.fragment(run_every=f"{STORE_BUSY_RETRY_S}s")
def retry_when_store_frees() -> None:
    """Rerun the whole page on each tick after the first (the first is the failed run)."""
    if state.store_busy_tick() > 1:
        st.rerun()


st.set_page_config(page_title="SPAI dashboard", page_icon=":material/image_search:", layout="wide")
address = st.get_option("server.address")
actor = signin.gate() if signin.enabled() else None  # sign-in: every page, any bind
refusal = access.bind_problem(address, signed_in=actor is not None)
if refusal:  # no sign-in: other machines only when allowed
    st.error(refusal, icon=":material/block:")
    st.stop()
if notice := access.banner(address, signed_in=actor is not None):
    st.warning(notice, icon=":material/lock_open:")
worker_problem = resources.start_worker_once()
page = navigation()
sidebar(worker_problem)
if actor is not None:
    signin.account_panel(actor)
try:
    page.run()
    state.clear_store_busy()
except OperationalError as exc:
    if not store_busy(exc):
        raise
    st.warning(
        f"The store is busy: another process is writing to it. This page retries every {STORE_BUSY_RETRY_S} s.",
        icon=":material/hourglass_top:",
    )
    state.clear_store_busy()  # count this failed run afresh: the next retry waits a full tick
    retry_when_store_frees()
resources.preload_in_background()  # torch after the first paint, before the first upload
