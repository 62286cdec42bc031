"""Train: queue a training / fine-tuning job, follow its curves live, register the result."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from dashboard import charts, components, jobqueue, signin, state
from dashboard.training_log import METRICS_FILE, read_training_log
from db.paths import data_dir, require_inside_roots  # data_dir()/train/<tag>: runs
from db import imageset_stats
from db.owners import NotAllowed
from db.session import REPO_ROOT, database_url, session_scope
from db.training_sets import write_training_csv
from spai.weights import TRAINED

KEY = state.TRAIN  # page prefix of this page's widget keys
TRAIN_KIND = "train"
PICK = KEY + "pick"  # the "Training job" picker


@dataclass(frozen=True)
class Preset:
    cfg: str  # YAML config, relative to the repository
    epochs: int
    batch_size: int
    learning_rate: float


PRESETS = {  # the first is the default
    "Demo model size (CPU, minutes)": Preset("configs/demo.yaml", 5, 8, 1e-4),
    "Full SPAI, ViT-B/16 (GPU)": Preset("configs/spai.yaml", 5, 16, 5e-4),
}


def _data_ui(url: str) -> tuple[list[int], list[int], str, str]:
    """Real and fake registered sets (ids), or an official CSV and its root folder."""
    with session_scope(url, readonly=True) as s:
        sets = imageset_stats.overview(s)
    sets = sets[sets["with_file"] > 0]
    ids = dict(zip(sets["name"], sets["id"]))
    c1, c2 = st.columns(2)
    real = c1.multiselect("Real image sets", list(sets.loc[sets["kind"] == "real", "name"]), key=KEY + "real")
    fake = c2.multiselect("Fake image sets", list(sets.loc[sets["kind"] == "fake", "name"]), key=KEY + "fake")
    with st.expander("Or an official training CSV (image,class,split) instead of the sets"):
        data = st.text_input("Training CSV", key=KEY + "data")
        root = st.text_input("CSV root folder (optional)", key=KEY + "root")
    return [int(ids[n]) for n in real], [int(ids[n]) for n in fake], data.strip(), root.strip()


def _launch_form(url: str) -> None:
    from dashboard.resources import active_model  # imports torch: only when needed

    st.markdown("**New training or fine-tuning run** (runs in the background worker)")
    real, fake, data, root = _data_ui(url)
    c1, c2 = st.columns(2)
    val = c1.slider("Validation share", 0.1, 0.5, 0.2, 0.05, key=KEY + "val_share")
    seed = c2.number_input("Split seed", 0, 2**31 - 1, 0, key=KEY + "seed")
    preset_name = c1.radio("Size", list(PRESETS), key=KEY + "preset")
    preset = PRESETS[preset_name]
    choice = active_model()
    model = Path(choice.weights).name
    start = c2.radio(
        "Start from",
        [f"the active model ({model})", "scratch"],
        index=0 if choice.exists else 1,
        key=KEY + "start",
        help="Fine-tuning needs the size of the active model (the demo model: "
        "demo size; the official weights: full SPAI)",
    )
    with session_scope(url, readonly=True) as s:
        free = jobqueue.free_run_name(s, _train_dir())
    tag = c1.text_input("Run name", free, key=KEY + "tag").strip()
    resume = c2.checkbox("Resume the run of this name", key=KEY + "resume")
    with st.expander("Training settings"):
        k = KEY + "{}." + preset.cfg  # each preset keeps its own values
        epochs = st.number_input("Epochs", 1, 1000, preset.epochs, key=k.format("epochs"))
        batch = st.number_input("Batch size", 1, 1024, preset.batch_size, key=k.format("batch"))
        lr = st.number_input("Base learning rate", 0.0, 1.0, preset.learning_rate, format="%.2e", key=k.format("lr"))
        aug = components.condition_picker(
            "Robustness conditions as training augmentation (AUG.CONDITIONS)", KEY + "aug", ()
        )
        aug_p = st.slider(
            "Probability per condition",
            0.05,
            1.0,
            0.2,
            0.05,
            key=KEY + "aug_p",
            disabled=not aug,
            help="Each training image goes through each chosen condition with this "
            "probability, by the same seeded code that makes the test "
            "variants (with seeds that never equal a test variant's), before "
            "the usual augmentations.",
        )
    if not st.button("Queue training job", key=KEY + "queue", type="primary"):
        return
    params = {
        "cfg": preset.cfg,
        "tag": tag,
        "epochs": int(epochs),
        "batch_size": int(batch),
        "learning_rate": float(lr),
        "device": "auto",
        "init_from": choice.weights if start != "scratch" and choice.exists else None,
        "aug_conditions": [{"id": c, "p": float(aug_p)} for c in aug] or None,
    }
    try:
        with session_scope(url) as s:
            jobqueue.check_run_name(s, tag, train_dir=_train_dir(), resume=resume)
            if data:
                csv_file = require_inside_roots(_resolve(data), "training CSV")
                csv_root = require_inside_roots(_resolve(root), "CSV root") if root else None
                if not csv_file.is_file():
                    raise ValueError(f"training CSV not found: {data}")
                params |= {"data_path": str(csv_file), "csv_root_dir": str(csv_root) if csv_root else None}
            elif not real or not fake:
                raise ValueError("choose at least one real and one fake image set (or give an official training CSV)")
            else:
                made = write_training_csv(
                    s,
                    data_dir() / "train-csv" / f"{tag}.csv",
                    real_ids=real,
                    fake_ids=fake,
                    val_fraction=float(val),
                    seed=int(seed),
                )
                params |= {"data_path": str(made.path), "csv_root_dir": str(made.root)}
                st.caption("Training CSV: " + ", ".join(f"{n} {what}" for what, n in made.counts.items()))
            job_id = jobqueue.enqueue_train(
                s, params, train_dir=_train_dir(), resume=resume, actor=signin.current_actor()
            )
    except (ValueError, KeyError) as exc:
        st.error(str(exc).strip("'\""), icon=":material/error:")
        return
    from dashboard.resources import start_worker_once  # imports torch: only when needed

    start_worker_once()
    state.watch_job(state.TRAIN_JOB, job_id)
    state.set_widget(PICK, job_id)  # the picker below shows the job just queued
    st.success(f"Queued training job {job_id} ({tag}).")


def _train_dir() -> Path:
    """Where training runs write: ``<SPAI_DATA_DIR or data>/train/<run name>``."""
    return data_dir() / "train"


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
    st.progress(
        min(done / total, 1.0) if total else 0.0, text=f"job {job.id}: {job.status} · step {done}/{total or '?'}"
    )
    if job.status in ("queued", "running") and st.button(
        "Cancel", key=f"{KEY}cancel.{job.id}", disabled=job.cancel_requested
    ):
        try:
            with session_scope(url) as s:
                jobqueue.cancel(s, job.id, actor=signin.current_actor())
        except NotAllowed as exc:
            st.error(str(exc), icon=":material/block:")
    if log.steps.empty:
        st.caption(f"No metrics yet in `{out / METRICS_FILE}`.")
    else:
        left, right = st.columns(2)
        left.plotly_chart(charts.curves_figure(log.steps, "step", ["loss"], title="Loss"), key=KEY + "loss")
        right.plotly_chart(charts.curves_figure(log.steps, "step", ["lr"], title="Learning rate"), key=KEY + "lr_chart")
    if not log.epochs.empty:
        st.plotly_chart(
            charts.curves_figure(log.epochs, "epoch", ["val_auc", "val_ap"], title="Validation"), key=KEY + "val"
        )
    if job.status == "failed":
        st.code(job.traceback or job.log_tail, language="text")
    elif job.status == "done":
        _register(url, job, out)


def _register(url: str, job: jobqueue.JobView, out: Path) -> None:
    best = sorted(out.glob("ckpt_epoch_*.pth"), key=lambda p: p.stat().st_mtime)
    ckpt = Path((job.result or {}).get("best_checkpoint") or (best[-1] if best else out / "ckpt_last.pth"))
    name = st.text_input("Model name", f"trained-{job.params.get('tag', job.id)}", key=f"{KEY}model_name.{job.id}")
    if st.button(f"Register {ckpt.name} as a model", key=f"{KEY}register.{job.id}"):
        try:
            with session_scope(url) as s:
                model_id = jobqueue.register_model(
                    s, ckpt, name=name, cfg=job.params.get("cfg"), origin=TRAINED, owner=signin.current_actor().owner
                )
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
# no status in the labels: they are drawn once per page run, the status below every 2 s
tags = {j.id: f"#{j.id} {j.params.get('tag', '')}" for j in runs}
ids = list(tags)
default = state.watched_job(state.TRAIN_JOB)
job_id = st.selectbox(
    "Training job", ids, index=ids.index(default) if default in ids else 0, key=PICK, format_func=tags.get
)
_live(url, job_id)
