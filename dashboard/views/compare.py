"""Compare: the robustness study in the browser (fake set x condition tables per model).

Any mix of models, image sets and conditions renders: each model averages over the selected
real sets it has scores for, and an empty cell says why on hover. ``?run=ID`` (see
``dashboard.links``) opens the page on one run's model, condition and set; ``?model=NAME``
selects a model.
"""

from __future__ import annotations

import streamlit as st

from dashboard import charts, components, jobqueue, links, signin, state, study_sections
from db import compare
from db.browse import cell_images
from db.models import ORIGINAL
from db.session import database_url, session_scope
from robustness import score_tables
from robustness.metrics import METRICS

KEY = state.COMPARE  # page prefix of this page's widget keys
BOOTSTRAP_AUTO_MAX = 20_000  # intervals are computed by default up to this many predictions
DRILL_THUMBS = 8  # thumbnails shown under a cell's image list
REASONS_SHOWN = 6  # distinct empty-cell reasons listed under the table


@st.cache_data(ttl=600, max_entries=8, show_spinner="Reading scores ...")
def _scores(url: str, model_id: int, version: int) -> score_tables.ScoreData:
    with session_scope(url, readonly=True) as s:
        return compare.load_scores(s, model_id)


@st.cache_data(max_entries=32, show_spinner="Bootstrapping intervals ...")
def _intervals(_data: score_tables.ScoreData, key: tuple, _table: score_tables.CompareTable):
    return score_tables.bootstrap_cells(_data, _table)


def _models(url: str) -> list[compare.ModelRow]:
    with session_scope(url, readonly=True) as s:
        return compare.models_with_predictions(s)


def _import_panel(url: str) -> None:
    st.info(
        "The store has no predictions yet. Import the robustness study's scores (SPAI with "
        "the official weights and the study's fused ROGER model, 5 conditions) to see its "
        "tables here.",
        icon=":material/database:",
    )
    if st.button("Import the robustness study", key=KEY + "import", type="primary"):
        with session_scope(url) as s:
            job_id = jobqueue.enqueue_import_study(s, actor=signin.current_actor())
        from dashboard.resources import start_worker_once  # imports torch: only when needed

        start_worker_once()
        state.watch_job(state.COMPARE_IMPORT_JOB, job_id)
    job_id = state.watched_job(state.COMPARE_IMPORT_JOB)
    if job_id is not None:
        _watch_import(url, job_id)


@st.fragment(run_every="2s")
def _watch_import(url: str, job_id: int) -> None:
    with session_scope(url, readonly=True) as s:
        job = jobqueue.status(s, job_id)
    if job.status == "done":
        state.watch_job(state.COMPARE_IMPORT_JOB, None)
        st.rerun()
    elif job.status in ("failed", "cancelled"):
        st.error(f"Import job {job_id} {job.status}: {job.log_tail[-500:]}")
    else:
        st.caption(f"Import job {job_id}: {job.status} (the worker is importing; this page refreshes by itself).")


def _focus(url: str, names: dict[str, compare.ModelRow]) -> compare.RunFocus | None:
    """Apply ``?run=ID`` / ``?model=NAME`` once per link: select the model (and the run's
    condition for the charts); returns the run to point out, if any."""
    params = st.query_params
    run_param, model_param = params.get(links.RUN_PARAM), params.get(links.MODEL_PARAM)
    focus = None
    if run_param is not None:
        if not run_param.isdigit():
            st.warning(f"`?run={run_param}` is not a run id.")
            return None
        with session_scope(url, readonly=True) as s:
            focus = compare.run_focus(s, int(run_param))
        if focus is None:
            st.warning(f"Run {run_param} is not in the store.")
            return None
        if focus.model_name not in names:
            st.warning(
                f"Run {focus.run_id} ({focus.model_name} on {focus.imageset} under "
                f"{focus.condition}) has no scores yet."
            )
            return None
        model_param = focus.model_name
    if model_param is None:
        return None
    if model_param not in names:
        st.warning(f"Model {model_param!r} has no scores in the store.")
        return None
    link = (run_param, model_param)
    if state.first_time(state.COMPARE_LINK, link):  # first render of this link only
        state.set_widget(state.COMPARE_MODELS, [model_param])
        state.set_widget(state.COMPARE_TABLE_MODEL, model_param)
        if focus is not None:
            state.set_widget(state.COMPARE_ROC_CONDITION, focus.condition)
    return focus


def _drilldown(url: str, data: score_tables.ScoreData, fake_set: str, condition: str) -> None:
    st.subheader(f"Images behind {data.model_name} · {fake_set} · {condition}")
    with session_scope(url, readonly=True) as s:
        rows = cell_images(s, model_id=data.model_id, imageset_id=data.imageset_ids[fake_set], condition_id=condition)
    if rows.empty:
        st.caption(f"{data.model_name} has no scores of {fake_set} under {condition}.")
        return
    local = int(rows["has_file"].sum())
    st.caption("Worst misses first (lowest scores of fake images).")
    if local == 0:
        st.info(
            f"None of these {len(rows)} images is on this machine: their scores were "
            "imported without the files (the study ships scores and paths only), so the "
            "list shows each image's path in its original data set.",
            icon=":material/cloud_off:",
        )
    elif local < len(rows):
        st.caption(f"{local} of {len(rows)} images are on this machine; the others are listed by their path only.")
    shown = rows.drop(columns=["file"]).rename(
        columns={"relpath": "image (path in its set)", "has_file": "on this machine"}
    )
    components.data_table(
        shown,
        hide_index=True,
        key=KEY + "cell_rows",
        column_config={"score": st.column_config.ProgressColumn("score", min_value=0.0, max_value=1.0, format="%.4f")},
    )
    files = rows[rows["has_file"]].head(DRILL_THUMBS)
    if len(files):
        components.image_grid(list(files["file"]), [f"{s:.3f}" for s in files["score"]])


def _model_column(
    col, data: score_tables.ScoreData, table: score_tables.CompareTable, metric: str, fmt: str, low, high
) -> None:
    col.plotly_chart(
        charts.heatmap_figure(
            table.values,
            title=f"{data.model_name}: {metric.upper()}",
            metric=metric,
            low=low,
            high=high,
            delta=table.delta,
            reasons=table.reasons,
        ),
        config=charts.plotly_config(fmt, f"{metric}-{data.model_name}"),
        key=KEY + f"heat.{data.model_id}",
    )
    if table.baseline:
        mean = table.values.loc[score_tables.MEAN_ROW, table.baseline]
        col.metric(
            f"{data.model_name}: mean {metric.upper()}, {table.baseline}",
            components.fmt_value(mean),
            help=table.reasons.loc[score_tables.MEAN_ROW, table.baseline] or None,
        )
    over = ", ".join(table.real_sets) or "no real set"
    delta = f"Δ against `{table.baseline}`." if table.baseline else f"no Δ: `{ORIGINAL}` is not among the conditions."
    unused = f" Not scored by this model: {', '.join(table.unused_real_sets)}." if table.unused_real_sets else ""
    col.caption(f"Mean over {over}; {delta}{unused}")
    summary = table.values.loc[[score_tables.MEAN_ROW]].T
    summary["delta"] = table.delta.loc[score_tables.MEAN_ROW]
    components.data_table(
        summary.rename(columns={score_tables.MEAN_ROW: f"mean {metric}"}),
        key=KEY + f"summary.{data.model_id}",
        column_config={
            f"mean {metric}": st.column_config.NumberColumn(format="%.3f"),
            "delta": st.column_config.NumberColumn(format="%+.3f"),
        },
    )


def _empty_cell_note(table: score_tables.CompareTable) -> None:
    reasons = [r for r in dict.fromkeys(table.reasons.to_numpy().ravel()) if r]
    if reasons:
        more = f" (and {len(reasons) - REASONS_SHOWN} more)" if len(reasons) > REASONS_SHOWN else ""
        st.caption("Empty cells (hover them in the heatmap): " + "; ".join(reasons[:REASONS_SHOWN]) + more + ".")


def _charts(
    datas: list[score_tables.ScoreData],
    chosen: list[str],
    conds: list[str],
    tables: list[score_tables.CompareTable],
    pick: str,
    fmt: str,
) -> None:
    st.subheader("ROC curves and score distributions")
    roc_cond = st.selectbox("Condition", conds, key=state.COMPARE_ROC_CONDITION)
    curves = {}
    for d, t in zip(datas, tables):
        for c in dict.fromkeys([roc_cond] + ([ORIGINAL] if ORIGINAL in conds else [])):
            if t.real_sets and score_tables.has_roc(d, c, t.real_sets):
                curves[f"{d.model_name} · {c}"] = score_tables.roc_curve(d, c, t.real_sets)
    left, right = st.columns(2)
    if curves:
        left.plotly_chart(
            charts.roc_figure(curves, title="ROC (all fake sets vs the real sets)"),
            config=charts.plotly_config(fmt, "roc"),
            key=KEY + "roc",
        )
    else:
        left.info(
            f"No ROC under {roc_cond}: no selected model has both fake and real scores there.", icon=":material/info:"
        )
    i = chosen.index(pick)
    hist = score_tables.score_histogram(datas[i], roc_cond, tables[i].real_sets)
    if hist.empty:
        right.info(f"{pick} has no scores under {roc_cond}.", icon=":material/info:")
    else:
        right.plotly_chart(
            charts.histogram_figure(hist, title=f"{pick}: scores under {roc_cond}"),
            config=charts.plotly_config(fmt, "scores"),
            key=KEY + "hist",
        )


url = database_url()
st.title("Compare")
models = _models(url)
if not models:
    _import_panel(url)
    st.stop()

names = {m.name: m for m in models}
focus = _focus(url, names)
if focus is not None:
    st.info(
        f"Run {focus.run_id}: **{focus.model_name}** on the {focus.kind} set "
        f"**{focus.imageset}** under **{focus.condition}**.",
        icon=":material/link:",
    )
c1, c2, c3 = st.columns([3, 2, 1])
state.default_widget(state.COMPARE_MODELS, [models[0].name])
chosen = c1.multiselect("Models", list(names), key=state.COMPARE_MODELS)
metric = c2.selectbox(
    "Metric", list(METRICS), key=KEY + "metric", format_func=lambda m: f"{m} ({METRICS[m].description})"
)
fmt = c3.selectbox("Chart export", charts.EXPORT_FORMATS, key=KEY + "export_format")
if not chosen:
    st.warning("Pick at least one model.")
    st.stop()
datas = [_scores(url, names[n].id, names[n].version) for n in chosen]
all_conds = list(dict.fromkeys(c for d in datas for c in d.conditions))
conds = components.multiselect_with_default("Conditions", all_conds, all_conds, KEY + "conditions")
all_reals = sorted({r for d in datas for r in d.sets("real")})
reals = components.multiselect_with_default(
    "Real sets to average over (default: the real sets the chosen models have scores for under the chosen conditions)",
    all_reals,
    score_tables.default_real_sets(datas, conds),
    KEY + "reals",
)
n_total = sum(d.n_predictions for d in datas)
boot = st.toggle(
    "Bootstrap 95% intervals on hover (200 replicates)", value=n_total <= BOOTSTRAP_AUTO_MAX, key=KEY + "bootstrap"
)
if not all_reals:
    st.warning(
        "The chosen models have no scores on a real image set, and every metric here "
        "compares fakes against reals. Score a real set with these models on the Jobs "
        "page.",
        icon=":material/info:",
    )
    st.stop()
if not conds or not reals:
    st.warning("Pick at least one condition and one real set.")
    st.stop()

tables = [score_tables.compare_table(d, metric=metric, real_sets=reals, conditions=conds) for d in datas]
if len({tuple(t.real_sets) for t in tables}) > 1:
    st.info(
        "The models were scored on different real sets; each averages over its own: "
        + "; ".join(f"**{t.model}**: {', '.join(t.real_sets) or 'none selected'}" for t in tables)
        + ".",
        icon=":material/info:",
    )
st.caption(f"Colour scale, fixed: {charts.metric_scale(metric).note}.")
for col, data, table in zip(st.columns(len(tables)), datas, tables):
    low = high = None
    if boot:
        low, high = _intervals(
            data, (url, data.model_id, data.n_predictions, metric, tuple(conds), tuple(table.real_sets)), table
        )
    _model_column(col, data, table, metric, fmt, low, high)

st.subheader("Table (click a cell to see its images)")
state.drop_widget_value_unless(state.COMPARE_TABLE_MODEL, chosen)
pick = st.selectbox("Model for the table", chosen, key=state.COMPARE_TABLE_MODEL)
table = tables[chosen.index(pick)]
event = components.data_table(
    table.values,
    key=KEY + "table",
    on_select="rerun",
    selection_mode="single-cell",
    column_config={c: st.column_config.NumberColumn(format="%.3f") for c in table.values},
)
_empty_cell_note(table)
st.download_button(
    "Download the table as CSV",
    score_tables.long_table(tables).to_csv(index=False),
    file_name=f"compare-{metric}.csv",
    mime="text/csv",
    key=KEY + "csv",
)
cells = event.selection.cells if event else []
if cells:
    row, cond = cells[0]
    fake = table.values.index[row]
    if fake != score_tables.MEAN_ROW:
        _drilldown(url, datas[chosen.index(pick)], fake, cond)

_charts(datas, chosen, conds, tables, pick, fmt)
study_sections.paired_deltas(url, KEY, chosen, {n: m.version for n, m in names.items()}, conds, reals, metric)
study_sections.study_file(url, KEY)
