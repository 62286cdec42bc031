"""Models page: available checkpoints (model card), stored models' evaluation, the default."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import components, resources, signin, state
from db.stored_models import evaluation_summary, store_model_ids, stored_models
from db.owners import NotAllowed
from db.removal import delete_model
from db.session import session_scope
from spai.config import load_config
from spai.weights import DEMO, OFFICIAL, ModelFile, catalogue, environment_model

CONFIG_FIELDS = ("embed_dim", "depth", "num_heads")
EVAL_NUMBERS = ("auc", "ap", "mean_score_real", "mean_score_fake")  # of evaluation_summary


def _config_summary(ckpt: ModelFile) -> str:
    if ckpt.config is None:
        return "official configs/spai.yaml" if ckpt.origin == OFFICIAL else "stored in checkpoint"
    try:
        cfg = load_config(ckpt.config).model
    except Exception as exc:  # a broken sidecar must not break the page
        return f"unreadable config: {exc}"
    vit = ", ".join(f"{f}={getattr(cfg.vit, f)}" for f in CONFIG_FIELDS)
    return f"ViT {vit}; masking radius {cfg.fre.masking_radius}"


def _evaluation_table(summary: pd.DataFrame) -> None:
    """An evaluation summary with every rate and score to 4 decimals (not "0" beside
    "0.0278")."""
    components.data_table(
        summary, hide_index=True, column_config={c: st.column_config.NumberColumn(format="%.4f") for c in EVAL_NUMBERS}
    )


def _evaluation(sha: str, origin: str) -> None:
    with session_scope(readonly=True) as s:
        ids = store_model_ids(s, sha256=sha, origin=origin)
        frames = [evaluation_summary(s, i) for i in ids]
    frames = [f for f in frames if not f.empty]
    if not frames:
        st.caption("No stored evaluation for these weights (score image sets on the Jobs page).")
        return
    _evaluation_table(pd.concat(frames))


st.title("Models")
env = environment_model()
checkpoints = catalogue(also=[env] if env is not None else [])
active = resources.active_model()
if not checkpoints:
    st.warning(resources.NO_MODEL_MESSAGE, icon=":material/error:")
for ckpt in checkpoints:
    sha = ckpt.sha256
    is_active = Path(active.weights).resolve() == ckpt.path.resolve()
    with st.container(border=True):
        from_env = env is not None and ckpt.path == env.path
        st.subheader(f"{ckpt.name}{' (active)' if is_active else ''}")
        if ckpt.origin == DEMO:
            st.markdown(":orange-badge[DEMO] trained on the offline demo set; not a benchmark")
        st.table(
            pd.DataFrame(
                {
                    "": ["origin", "file", "size", "sha256", "config"],
                    "value": [
                        ckpt.origin + (" (SPAI_MODEL_WEIGHTS)" if from_env else ""),
                        str(ckpt.path),
                        f"{ckpt.size_bytes / 2**20:.1f} MB",
                        sha,
                        _config_summary(ckpt),
                    ],
                }
            ).set_index("")
        )
        if ckpt.model_card is not None:
            with st.expander("Model card"):
                st.markdown(ckpt.model_card.read_text(encoding="utf-8"))
        st.markdown("**Evaluation from the store**")
        _evaluation(sha, ckpt.origin)

if checkpoints:
    names = {str(c.path): f"{c.name} ({c.origin})" for c in checkpoints}
    current = next((p for p in names if Path(p).resolve() == Path(active.weights).resolve()), None)
    saved = active.saved
    if saved and not Path(saved).is_file():
        st.warning(
            f"The saved default model {saved} no longer exists; using {Path(active.weights).name} instead.",
            icon=":material/warning:",
        )
    choice = st.selectbox(
        "Default model for Score and Inspect (saved in the store, for every user)",
        list(names),
        index=list(names).index(current) if current else 0,
        format_func=names.get,
        key=state.MODELS_CHOICE,
    )
    left, right = st.columns(2)
    actor = signin.current_actor()
    try:
        if left.button("Use as default", key=state.MODELS_SET_DEFAULT):
            resources.save_default_model(choice, actor=actor)
            st.success(f"Default model: {names[choice]}")
        if saved and right.button(
            "Forget the saved default",
            key=state.MODELS_CLEAR_DEFAULT,
            help="Back to SPAI_MODEL_WEIGHTS, or official weights, or the demo",
        ):
            resources.save_default_model(None, actor=actor)
            st.success("The saved default is forgotten.")
    except NotAllowed as exc:
        st.error(str(exc), icon=":material/block:")

st.header("Models in the store")
with session_scope(readonly=True) as s:
    stored = stored_models(s)
if not stored:
    st.caption("The store has no models yet.")
else:
    table = pd.DataFrame([m.__dict__ for m in stored])
    if not signin.enabled():  # without sign-in nobody owns a model
        table = table.drop(columns=["owner"])
    components.data_table(table, hide_index=True)
    by_id = {m.id: m.name for m in stored}
    pick = st.selectbox("Evaluation summary of", list(by_id), format_func=by_id.get, key=state.MODELS_STORED)
    with session_scope(readonly=True) as s:
        summary = evaluation_summary(s, pick)
    if summary.empty:
        st.caption("This model has no stored predictions.")
    else:
        _evaluation_table(summary)
    if st.button(
        f"Delete {by_id[pick]} from the store",
        key=state.MODELS_DELETE,
        help="With its runs and their scores; the weights file stays",
    ):
        try:
            with session_scope() as s:
                delete_model(s, pick, actor=signin.current_actor())
            st.rerun()
        except (ValueError, NotAllowed) as exc:
            st.error(str(exc), icon=":material/block:")
