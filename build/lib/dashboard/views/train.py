"""Train: queue a training / fine-tuning job, follow its curves live, register the result."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard import charts, jobqueue
from dashboard.worker import data_dir  # <SPAI_DATA_DIR or data>/train/<tag>: run outputs
from dashboard.training_log import METRICS_FILE, read_training_log
from db import jobs as db_jobs
from db.session import REPO_ROOT, database_url, session_scope

KEY = "train."  # page prefix of this page's widget keys
TRAIN_KIND = "train"
DEFAULT_CFG = "configs/spai.yaml"


def _path_or_none(text: str) -> str | None:
    return str(Path(text.strip()).expanduser()) if text.strip() else None


def _launch_form(url: str) -> None:
    with st.form(KEY + "form"):
        st.markdown("**New training or fine-tuning run** (runs in the background worker)")
        c1, c2 = st.columns(2)
        cfg = c1.text_input("Config (YAML)", DEFAULT_CFG, key=KEY + "cfg")
        data = c2.text_input("Training CSV (image,class,split)", key=KEY + "data")
        root = c1.text_input("CSV root folder (optional)", key=KEY + "root")
        tag = c2.text_input("Run name", "finetune", key=KEY + "tag")
        pretrained = c1.text_input("MFM-pretrained backbone (optional; freezes it)",
                                   key=KEY + "pretrained")
        resume = c2.text_input("Resume from checkpoint (optional)", key=KEY + "resume")
        epochs = c1.number_input("Epochs", 1, 1000, 5, key=KEY + "epochs")
        batch = c2.number_input("Batch size", 1, 1024, 8, key=KEY + "batch")
        lr = c1.number_input("Base learning rate", 0.0, 1.0, 5e-4, format="%.2e", key=KEY + "lr")
        submitted = st.form_submit_button("Queue training job", type="primary")
    if not submitted:
        return
    problems = [f"{what} not found: {p}" for what, p in
                (("config", cfg), ("training CSV", data), ("pretrained weights", pretrained),
                 ("checkpoint", resume)) if p.strip() and not _resolve(p).is_file()]
    if not data.strip():
        problems.append("give a training CSV")
    if problems:
        st.error("; ".join(problems), icon=":material/error:")
        return
    params = {"cfg": _path_or_none(cfg), "data_path": _path_or_none(data),
              "csv_root_dir": _path_or_none(root), "output": str(data_dir() / "train" / tag.strip()),
              "tag": tag.strip(), "pretrained": _path_or_none(pretrained),
              "resume": _path_or_none(resume), "epochs": int(epochs), "batch_size": int(batch),
              "learning_rate": float(lr), "device": "auto"}
    with session_scope(url) as s:
        job_id = db_jobs.enqueue(s, TRAIN_KIND, params)
    from dashboard.resources import start_worker_once  # imports torch: only when needed

    start_worker_once()
    st.session_state[KEY + "job"] = job_id
    st.success(f"Queued training job {job_id}.")


def _resolve(path: str) -> Path:
    p = Path(path.strip()).expanduser()
    return p if p.is_absolute() else REPO_ROOT / p


@st.fragment(run_every="2s")
def _live(url: str, job_id: int) -> None:
    """Status, curves and cancel for one training job (refreshes every 2 s)."""
    with session_scope(url, readonly=True) as s:
        job = jobqueue.status(s, job_id)
    out = _resolve(job.params.get("output") or "")
    log = read_training_log(out / METRICS_FILE)
    total = int(log.steps["total_steps"].iloc[-1]) if "total_steps" in log.steps else None
    done = int(log.steps["step"].iloc[-1]) if "step" in log.steps else 0
    st.progress(min(done / total, 1.0) if total else 0.0,
                text=f"job {job.id}: {job.status} · step {done}/{total or '?'}")
    if job.status in ("queued", "running") and st.button(
            "Cancel", key=f"{KEY}cancel.{job.id}", disabled=job.cancel_requested):
        with session_scope(url) as s:
            jobqueue.cancel(s, job.id)
    if log.steps.empty:
        st.caption(f"No metrics yet in `{out / METRICS_FILE}`.")
    else:
        left, right = st.columns(2)
        left.plotly_chart(charts.curves_figure(log.steps, "step", ["loss"], title="Loss"),
                          key=KEY + "loss")
        right.plotly_chart(charts.curves_figure(log.steps, "step", ["lr"],
                                                title="Learning rate"), key=KEY + "lr_chart")
    if not log.epochs.empty:
        st.plotly_chart(charts.curves_figure(log.epochs, "epoch", ["val_auc", "val_ap"],
                                             title="Validation"), key=KEY + "val")
    if job.status == "failed":
        st.code(job.traceback or job.log_tail, language="text")
    elif job.status == "done":
        _register(url, job, out)


def _register(url: str, job: jobqueue.JobView, out: Path) -> None:
    best = sorted(out.glob("ckpt_epoch_*.pth"), key=lambda p: p.stat().st_mtime)
    ckpt = Path((job.result or {}).get("best_checkpoint") or (best[-1] if best else
                                                              out / "ckpt_last.pth"))
    name = st.text_input("Model name", f"trained-{job.params.get('tag', job.id)}",
                         key=f"{KEY}model_name.{job.id}")
    if st.button(f"Register {ckpt.name} as a model", key=f"{KEY}register.{job.id}"):
        try:
            with session_scope(url) as s:
                model_id = jobqueue.register_model(s, ckpt, name=name, cfg=job.params.get("cfg"),
                                                   origin="trained")
            st.success(f"Registered model {model_id} ({name}); use it on the Jobs page.")
        except (OSError, ValueError) as exc:
            st.error(f"Cannot register: {exc}")


url = database_url()
st.title("Train")
_launch_form(url)
with session_scope(url, readonly=True) as s:
    runs = [j for j in jobqueue.recent(s) if j.kind == TRAIN_KIND]
if not runs:
    st.info("No training jobs yet.", icon=":material/school:")
    st.stop()
tags = {j.id: f"#{j.id} {j.params.get('tag', '')} ({j.status})" for j in runs}
ids = list(tags)
default = st.session_state.get(KEY + "job")
job_id = st.selectbox("Training job", ids, index=ids.index(default) if default in ids else 0,
                      key=KEY + "pick", format_func=tags.get)
_live(url, job_id)
