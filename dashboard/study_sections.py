"""Compare page sections backed by ``robustness.study``: paired deltas between two models, and
a study file uploaded to see its tables and download its report. Widgets take the page's key
prefix; the work is done by library functions."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard import components
from db.paths import PathNotAllowed, require_inside_roots
from db.session import REPO_ROOT, session_scope


@st.cache_data(ttl=600, max_entries=8, show_spinner="Reading per-image scores ...")
def _image_scores(url: str, name: str, version: int, conds: tuple[str, ...]):
    from robustness.study.results import ModelScores
    from robustness.study.store import load_scores

    with session_scope(url, readonly=True) as s:
        return ModelScores(name, load_scores(s, name, list(conds)))


@st.cache_data(max_entries=16, show_spinner="Bootstrapping paired deltas ...")
def _delta_frame(_a, _b, key: tuple, conds: tuple[str, ...], reals: tuple[str, ...], metric: str):
    from robustness.study.deltas import delta_frame

    return delta_frame(_a, _b, conditions=list(conds), real_sets=list(reals), metric=metric)


def paired_deltas(
    url: str, key: str, chosen: list[str], versions: dict[str, int], conds: list[str], reals: list[str], metric: str
) -> None:
    """Model A minus model B per condition with paired bootstrap intervals (off until
    toggled); ``versions`` (model name -> score version) key the caches."""
    st.divider()
    st.subheader("Paired deltas between two models")
    if len(chosen) < 2:
        st.caption(
            "Pick two models above (e.g. before and after fine-tuning) to put them side "
            "by side per condition, with a paired bootstrap interval for each delta."
        )
        return
    c1, c2 = st.columns(2)
    a = c1.selectbox("Model A", chosen, key=key + "delta_a")
    b = c2.selectbox("minus model B", [m for m in chosen if m != a], key=key + "delta_b")
    if not st.toggle("Compute (200 paired replicates: the same images resampled for both)", key=key + "delta_on"):
        return
    sa, sb = (_image_scores(url, m, versions[m], tuple(conds)) for m in (a, b))
    frame, skipped = _delta_frame(sa, sb, (url, a, b, versions[a], versions[b]), tuple(conds), tuple(reals), metric)
    if frame.empty:
        st.info("No condition can be compared: " + "; ".join(skipped), icon=":material/info:")
        return
    fmt = {c: st.column_config.NumberColumn(format="%.3f") for c in (a, b)}
    fmt |= {c: st.column_config.NumberColumn(format="%+.3f") for c in ("delta", "low", "high")}
    components.data_table(frame, hide_index=True, key=key + "delta_table", column_config=fmt)
    st.caption(
        f"{metric.upper()} of {a} minus {b}, each fake set against the selected real "
        f"sets, on the images both models scored; low/high: 95% interval."
        + (" Not compared: " + "; ".join(skipped) + "." if skipped else "")
    )


def study_file(url: str, key: str) -> None:
    """Upload a study file: its tables from the store, and its HTML report to download."""
    from robustness.study.report import html_report, load_results
    from robustness.study.schema import MAX_STUDY_BYTES, StudyFileError, study_from_text
    from robustness.study.store import StoreConflict
    from robustness.study.tables import markdown_tables

    st.divider()
    st.subheader("Study file")
    st.caption(
        "A study file (python -m robustness.study) names image sets, conditions, models, "
        "metrics and real sets; here its tables and report come from what is stored. "
        "`python -m robustness.study run FILE` queues what is missing."
    )
    up = st.file_uploader("Study file (YAML)", type=["yaml", "yml"], key=key + "study_file", max_upload_size=1)
    base = st.text_input(
        "Folder its relative paths start from", value=str(REPO_ROOT / "examples"), key=key + "study_base"
    )
    if up is None:
        return
    try:
        anchor = require_inside_roots(base, "the study's folder")
        raw = up.getvalue()[: MAX_STUDY_BYTES + 1].decode("utf-8")
        study = study_from_text(raw, anchor / Path(up.name).name)
        for path in study.paths():  # a study may name absolute paths or ../ ones
            require_inside_roots(path, "a path in the study")
    except PathNotAllowed as exc:
        st.error(str(exc))
        return
    except UnicodeDecodeError:
        st.error(f"{up.name} is not UTF-8 text.")
        return
    except StudyFileError as exc:
        st.error(f"{up.name}: {exc}")
        return
    try:
        results = load_results(study, url=url)
    except (ValueError, KeyError, StoreConflict) as exc:
        st.info(
            f"Study {study.name!r} is not all in the store yet ({exc}). Queue its jobs "
            f"with `python -m robustness.study run {up.name}`.",
            icon=":material/info:",
        )
        return
    st.markdown(markdown_tables(results, study.metrics[0]))
    if st.toggle("Build the HTML report (tables, figures, model hashes, versions, seeds)", key=key + "study_report"):
        st.download_button(
            "Download the report",
            html_report(study, url=url),
            file_name=f"{study.name}-report.html",
            mime="text/html",
            key=key + "study_download",
        )
