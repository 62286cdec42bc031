"""Compare: the robustness study in the browser (fake set x condition tables per model)."""

from __future__ import annotations

import streamlit as st

from dashboard import charts, jobqueue
from db import compare
from db.browse import cell_images
from db.session import database_url, session_scope
from robustness.metrics import METRICS

KEY = "compare."  # page prefix of this page's widget keys
BOOTSTRAP_AUTO_MAX = 20_000  # intervals are computed by default up to this many predictions


@st.cache_data(ttl=600, max_entries=8, show_spinner="Reading scores ...")
def _scores(url: str, model_id: int, version: int) -> compare.ScoreData:
    with session_scope(url, readonly=True) as s:
        return compare.load_scores(s, model_id)


@st.cache_data(max_entries=32, show_spinner="Bootstrapping intervals ...")
def _intervals(_data: compare.ScoreData, key: tuple, _table: compare.CompareTable):
    return compare.bootstrap_cells(_data, _table)


def _models(url: str) -> list[compare.ModelRow]:
    with session_scope(url, readonly=True) as s:
        return compare.models_with_predictions(s)


def _import_panel(url: str) -> None:
    st.info("The store has no predictions yet. Import the robustness study's scores (SPAI with "
            "the official weights and the study's fused ROGER model, 5 conditions) to see its "
            "tables here.", icon=":material/database:")
    if st.button("Import the robustness study", key=KEY + "import", type="primary"):
        with session_scope(url) as s:
            job_id = jobqueue.enqueue_import_study(s)
        from dashboard.resources import start_worker_once  # imports torch: only when needed

        start_worker_once()
        st.session_state[KEY + "import_job"] = job_id
    job_id = st.session_state.get(KEY + "import_job")
    if job_id is not None:
        _watch_import(url, job_id)


@st.fragment(run_every="2s")
def _watch_import(url: str, job_id: int) -> None:
    with session_scope(url, readonly=True) as s:
        job = jobqueue.status(s, job_id)
    if job.status == "done":
        st.session_state.pop(KEY + "import_job", None)
        st.rerun()
    elif job.status in ("failed", "cancelled"):
        st.error(f"Import job {job_id} {job.status}: {job.log_tail[-500:]}")
    else:
        st.caption(f"Import job {job_id}: {job.status} (the worker is importing; this page "
                   "refreshes by itself).")


def _drilldown(url: str, data: compare.ScoreData, fake_set: str, condition: str) -> None:
    st.subheader(f"Images behind {data.model_name} · {fake_set} · {condition}")
    with session_scope(url, readonly=True) as s:
        rows = cell_images(s, model_id=data.model_id, imageset_id=data.imageset_ids[fake_set],
                           condition_id=condition)
    st.caption("Worst misses first (lowest scores of fake images). Images without a file on "
               "this machine are shown as paths.")
    st.dataframe(rows, hide_index=True, key=KEY + "cell_rows", column_config={
        "score": st.column_config.ProgressColumn("score", min_value=0.0, max_value=1.0,
                                                 format="%.4f")})
    files = rows[rows["has_file"]].head(8)
    if len(files):
        st.image(list(files["file"]), caption=[f"{s:.3f}" for s in files["score"]], width=140)


url = database_url()
st.title("Compare")
models = _models(url)
if not models:
    _import_panel(url)
    st.stop()

names = {m.name: m for m in models}
c1, c2, c3 = st.columns([3, 2, 1])
chosen = c1.multiselect("Models", list(names), default=[models[0].name], key=KEY + "models")
metric = c2.selectbox("Metric", list(METRICS), key=KEY + "metric",
                      format_func=lambda m: f"{m} ({METRICS[m].description})")
fmt = c3.selectbox("Chart export", charts.EXPORT_FORMATS, key=KEY + "export_format")
if not chosen:
    st.warning("Pick at least one model.")
    st.stop()
datas = [_scores(url, names[n].id, names[n].version) for n in chosen]
all_conds = list(dict.fromkeys(c for d in datas for c in d.conditions))
conds = st.multiselect("Conditions", all_conds, default=all_conds, key=KEY + "conditions")
all_reals = sorted({r for d in datas for r in d.sets("real")})
reals = st.multiselect("Real sets to average over (default: present under every compared "
                       "condition)", all_reals, default=compare.default_real_sets(datas, conds),
                       key=KEY + "reals")
n_total = sum(d.n_predictions for d in datas)
boot = st.toggle("Bootstrap 95% intervals on hover (200 replicates)",
                 value=n_total <= BOOTSTRAP_AUTO_MAX, key=KEY + "bootstrap")
if not conds or not reals:
    st.warning("Pick at least one condition and one real set.")
    st.stop()

tables = [compare.compare_table(d, metric=metric, real_sets=reals, conditions=conds)
          for d in datas]
for col, data, table in zip(st.columns(len(tables)), datas, tables):
    low = high = None
    if boot:
        low, high = _intervals(data, (url, data.model_id, data.n_predictions, metric,
                                      tuple(conds), tuple(reals)), table)
    col.plotly_chart(charts.heatmap_figure(
        table.values, title=f"{data.model_name}: {metric.upper()}", low=low, high=high,
        delta=table.delta, higher_is_better=METRICS[metric].higher_is_better),
        config=charts.plotly_config(fmt, f"{metric}-{data.model_name}"),
        key=KEY + f"heat.{data.model_id}")
    if table.baseline:
        col.metric(f"{data.model_name}: mean {metric.upper()}, {table.baseline}",
                   f"{table.values.loc[compare.MEAN_ROW, table.baseline]:.3f}")
    col.caption(f"Mean over {', '.join(reals)}; Δ against `{table.baseline}`.")
    summary = table.values.loc[[compare.MEAN_ROW]].T
    summary["delta"] = table.delta.loc[compare.MEAN_ROW]
    col.dataframe(summary.rename(columns={compare.MEAN_ROW: f"mean {metric}"}),
                  key=KEY + f"summary.{data.model_id}")

st.subheader("Table (click a cell to see its images)")
pick = st.selectbox("Model for the table", chosen, key=KEY + "table_model")
table = tables[chosen.index(pick)]
event = st.dataframe(table.values, key=KEY + "table", on_select="rerun",
                     selection_mode="single-cell")
st.download_button("Download the table as CSV", compare.long_table(tables).to_csv(index=False),
                   file_name=f"compare-{metric}.csv", mime="text/csv", key=KEY + "csv")
cells = event.selection.cells if event else []
if cells:
    row, cond = cells[0]
    fake = table.values.index[row]
    if fake != compare.MEAN_ROW:
        _drilldown(url, datas[chosen.index(pick)], fake, cond)

st.subheader("ROC curves and score distributions")
roc_cond = st.selectbox("Condition", conds, key=KEY + "roc_condition")
curves = {f"{d.model_name} · {c}": compare.roc_curve(d, c, reals)
          for d in datas for c in conds if d.sets("fake", c)}
left, right = st.columns(2)
left.plotly_chart(charts.roc_figure(curves, title="ROC (all fake sets vs the real sets)"),
                  config=charts.plotly_config(fmt, "roc"), key=KEY + "roc")
shown = datas[chosen.index(pick)]
right.plotly_chart(charts.histogram_figure(
    compare.score_histogram(shown, roc_cond, reals),
    title=f"{shown.model_name}: scores under {roc_cond}"),
    config=charts.plotly_config(fmt, "scores"), key=KEY + "hist")
