"""Image sets: register a folder or an official CSV, see what is in each set, derive conditions."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import jobqueue, signin, state
from dashboard.components import condition_picker, data_table
from db import imageset_stats, removal
from db.owners import NotAllowed
from db.paths import PathNotAllowed, data_roots, require_inside_roots
from db.imagesets import label_layout, resolve_inside
from db.models import ORIGINAL
from db.session import database_url, session_scope
from core.imageio import ImageLoadError, thumbnail

KEY = state.IMAGESETS  # page prefix of this page's widget keys
THUMBNAILS = 12  # thumbnails shown per set
THUMB_PX = 240  # side of the decoded thumbnails (shown at 120 px)
PROBLEMS_SHOWN = 200  # per-file problems listed after a registration


def _folder_form(url: str) -> int | None:
    """Register a folder: two labelled sets when it has label subfolders, else one set with
    the label the user picks (there is no default label). Returns a queued job id."""
    folder = st.text_input(
        "Folder (on the server)", key=KEY + "folder", placeholder=f"a folder inside {_roots_text()}"
    ).strip()
    allowed = _allowed(folder, "folder") if folder else None
    layout = label_layout(allowed) if allowed else None
    if layout is not None:
        st.info(
            f"Labels from subfolders: `{layout['real'].name}/` is real, "
            f"`{layout['fake'].name}/` is fake; registers two sets, <name>-real and "
            "<name>-fake.",
            icon=":material/folder_special:",
        )
        kind = None
    else:
        if folder:
            st.caption(
                "No real/ and fake/ (or 0_real/1_fake, nature/ai) subfolders here: every "
                "image in this folder gets the one label you choose."
            )
        kind = st.radio(
            "Label of every image in this folder",
            ["real", "fake"],
            index=None,
            horizontal=True,
            key=KEY + "folder_kind",
        )
    name = st.text_input("Set name (default: the folder's name)", key=KEY + "folder_name")
    gen = st.text_input("Generator or real source (optional)", key=KEY + "folder_gen")
    if not st.button("Register folder", key=KEY + "register_folder"):
        return None
    try:
        if not folder:
            raise ValueError("give a folder")
        if allowed is None:
            return None  # the reason is shown under the field
        if not Path(allowed).is_dir():
            raise ValueError(f"image folder not found: {folder}")
        if layout is None and kind is None:
            raise ValueError("choose the label (real or fake) of the images in this folder")
        with session_scope(url) as s:
            return jobqueue.enqueue_register_folder(
                s,
                allowed,
                name=name.strip() or Path(allowed).name,
                kind=kind,
                generator=gen.strip() or None,
                actor=signin.current_actor(),
            )
    except (ValueError, NotAllowed) as exc:
        st.error(f"Registration failed: {exc}", icon=":material/error:")
    return None


def _csv_form(url: str) -> int | None:
    """Register an official CSV; returns a queued job id."""
    with st.form(KEY + "csv_form"):
        csv_path = st.text_input("CSV file (columns image,class[,split])", key=KEY + "csv")
        root = st.text_input("Root folder the image paths are relative to", key=KEY + "root")
        csv_name = st.text_input(
            "Set name (a CSV with both classes gives <name>-real and <name>-fake)", key=KEY + "csv_name"
        )
        split = st.text_input("Only this split (optional)", key=KEY + "split")
        csv_gen = st.text_input("Generator or real source (optional)", key=KEY + "csv_gen")
        if not st.form_submit_button("Register CSV"):
            return None
    try:
        if not csv_path.strip() or not root.strip() or not csv_name.strip():
            raise ValueError("give a CSV file, its root folder and a set name")
        csv_file = require_inside_roots(csv_path.strip(), "CSV file")
        root_dir = require_inside_roots(root.strip(), "root folder")
        if not csv_file.is_file():
            raise ValueError(f"CSV file not found: {csv_path.strip()}")
        if not root_dir.is_dir():
            raise ValueError(f"root folder not found: {root.strip()}")
        with session_scope(url) as s:
            return jobqueue.enqueue_register_csv(
                s,
                str(csv_file),
                str(root_dir),
                name=csv_name.strip(),
                generator=csv_gen.strip() or None,
                split=split.strip() or None,
                actor=signin.current_actor(),
            )
    except (ValueError, NotAllowed) as exc:
        st.error(f"Registration failed: {exc}", icon=":material/error:")
    return None


def _register_form(url: str) -> int | None:
    """The two registration tabs; returns the id of a registration job just queued."""
    if not signin.current_actor().admin:
        st.caption("Only an administrator may register server folders and CSVs.")
    folder_tab, csv_tab = st.tabs(["Register a folder", "Register an official CSV"])
    with folder_tab:
        queued = _folder_form(url)
    with csv_tab:
        return _csv_form(url) or queued


@st.fragment(run_every="2s")
def _registration_status(url: str, job_id: int) -> None:
    """Progress and outcome of the registration job (hashing runs in the worker)."""
    with session_scope(url, readonly=True) as s:
        job = jobqueue.status(s, job_id)
    if job.status in ("queued", "running"):
        st.info(
            f"Registration job {job_id} {job.status}: hashing and decoding the images in the background worker ...",
            icon=":material/hourglass_top:",
        )
        return
    if job.status != "done":
        st.error(
            f"Registration job {job_id} {job.status}: "
            f"{(job.traceback or job.log_tail or '').strip().splitlines()[-1:] or ''}",
            icon=":material/error:",
        )
        return
    _report(job.result or {})
    if state.first_time(state.IMAGESETS_SHOWN, job_id):  # refresh the overview below once
        st.rerun()


def _roots_text() -> str:
    """The allowed roots (SPAI_DATA_ROOTS), for the folder field's placeholder."""
    return ", ".join(str(r) for r in data_roots())


def _allowed(path: str, what: str) -> str | None:
    """``path`` when it is inside the allowed roots, else None with the reason shown."""
    try:
        return str(require_inside_roots(path, what))
    except PathNotAllowed as exc:
        st.error(str(exc), icon=":material/block:")
        return None


def _derive_form(url: str, set_id: int, with_file: int) -> None:
    """Queue one derivation job per chosen condition (a set without files has nothing to
    derive from)."""
    st.subheader("Derive condition variants")
    if not with_file:
        st.caption("Nothing to derive from: this set has no image files on this machine.")
        return
    conds = condition_picker("Conditions", KEY + "conditions", [])
    if st.button("Queue derivation jobs", key=KEY + "derive", disabled=not conds):
        with session_scope(url) as s:
            ids = [
                jobqueue.enqueue_make_condition(s, imageset_id=set_id, condition_id=c, actor=signin.current_actor())
                for c in conds
            ]
        from dashboard.resources import start_worker_once  # imports torch: only when needed

        start_worker_once()
        st.success(f"Queued job(s) {', '.join(map(str, ids))}; follow them on the Jobs page.")


def _thumbnails(root: str, relpaths: list[str]) -> None:
    """Small copies decoded through the capped decoder, each file checked to lie inside the
    set's root (symlinks followed); a file that cannot be shown says why."""
    shown = []
    for rel in relpaths:
        try:
            shown.append((thumbnail(resolve_inside(Path(root), rel), THUMB_PX), rel))
        except (ImageLoadError, ValueError) as exc:
            st.caption(f"{rel}: {exc}")
    if shown:
        st.image([t for t, _ in shown], caption=[r for _, r in shown], width=120)


def _report(result: dict) -> None:
    names = ", ".join(result.get("imageset_ids", {}))
    problems = result.get("problems", [])
    st.success(
        f"Registered {names}: {result.get('added', 0)} image(s) added, "
        f"{result.get('already_present', 0)} already present, {len(problems)} problem(s)."
    )
    if problems:
        data_table(pd.DataFrame(problems[:PROBLEMS_SHOWN]), key=KEY + "problems")


def _score_form(url: str, imageset_id: int, name: str, with_file: int) -> None:
    """One click: score the set with the active model under the chosen conditions (one infer
    job per condition; each derives its condition's files first)."""
    from dashboard.resources import active_model, start_worker_once  # imports torch

    st.subheader("Score this set")
    choice = active_model()
    if not choice.exists or not with_file:
        st.caption(
            "Nothing to score with: "
            + (
                "the active model's file is missing."
                if not choice.exists
                else "this set has no image files on this machine."
            )
        )
        return
    original = st.checkbox("Original images", value=True, key=KEY + "score_original")
    conds = condition_picker("Under these conditions too", KEY + "score_conditions", [])
    conditions = [ORIGINAL] * original + conds
    model = Path(choice.weights).stem
    if not st.button(
        f"Score {name} with {model} on {len(conditions)} condition(s)",
        key=KEY + "score",
        type="primary",
        disabled=not conditions,
    ):
        return
    with session_scope(url) as s:
        ids = jobqueue.enqueue_score_set(
            s,
            weights=choice.weights,
            cfg=choice.cfg,
            imageset_ids=[imageset_id],
            conditions=conditions,
            actor=signin.current_actor(),
        )
    start_worker_once()
    st.success(f"Queued job(s) {', '.join(map(str, ids))}: follow them on the Jobs page.")


url = database_url()
st.title("Image sets")
queued = _register_form(url)
if queued is not None:
    state.watch_job(state.IMAGESETS_JOB, queued)
    from dashboard.resources import start_worker_once  # imports torch: only when needed

    start_worker_once()
if state.watched_job(state.IMAGESETS_JOB) is not None:
    _registration_status(url, state.watched_job(state.IMAGESETS_JOB))

with session_scope(url, readonly=True) as s:
    sets = imageset_stats.overview(s)
if sets.empty:
    st.info(
        "No image sets yet: register a folder or a CSV above, or import the robustness study on the Compare page.",
        icon=":material/photo_library:",
    )
    st.stop()
hidden = ["id"] + ["owner"] * (not signin.enabled())  # without sign-in nobody owns a set
data_table(sets.drop(columns=hidden), hide_index=True, key=KEY + "overview")

names = list(sets["name"])
state.drop_widget_value_unless(KEY + "set", names)  # a deleted set's name
chosen = st.selectbox("Set", names, key=KEY + "set")
row = sets[sets["name"] == chosen].iloc[0]
with session_scope(url, readonly=True) as s:
    imgs = imageset_stats.images(s, int(row["id"]))
    errors = imageset_stats.images(s, int(row["id"]), errors_only=True)
root = row["root"] if isinstance(row["root"], str) else None  # pandas reads a None as nan
st.caption(
    f"{row['images']} image(s), {row['with_file']} with a file here, {row['errors']} "
    "unreadable; " + (f"root `{root}`" if root else "no folder: its scores were imported without the image files")
)
files = imgs[imgs["file"].notna() & imgs["error"].isna()].head(THUMBNAILS)
if len(files):
    _thumbnails(str(root), list(files["relpath"]))
if len(errors):
    st.subheader("Files that cannot be used")
    data_table(errors[["relpath", "error"]], hide_index=True, key=KEY + "errors")

_score_form(url, int(row["id"]), str(row["name"]), int(row["with_file"]))

_derive_form(url, int(row["id"]), int(row["with_file"]))

st.subheader("Delete this set")
sure = st.checkbox(
    f"Delete {row['name']} with its images' scores and its runs (the files on disk stay)", key=KEY + "delete_sure"
)
if st.button("Delete the set", key=KEY + "delete", disabled=not sure):
    try:
        with session_scope(url) as s:
            removal.delete_imageset(s, int(row["id"]), actor=signin.current_actor())
        st.rerun()
    except (ValueError, NotAllowed) as exc:
        st.error(str(exc), icon=":material/block:")
