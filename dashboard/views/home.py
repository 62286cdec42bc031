"""Start page: the app's landing page at ``/``, so every other page keeps its own URL
(Streamlit serves the default page at the root only: ``/score`` would not exist if Score were
the default)."""

from __future__ import annotations

import streamlit as st

from dashboard.guide import first_run_guide

st.title("SPAI Robustness Lab")
st.markdown(
    "Is an image AI-generated, and does the answer survive re-sharing? Score images "
    "with the SPAI detector, inspect what it looks at, and compare models across "
    "robustness conditions (JPEG, resizing, filters, memes, screenshots)."
)
first_run_guide()
left, right = st.columns(2)
with left:
    st.page_link("views/score.py", label="Score images", icon=":material/fact_check:")
    st.page_link("views/inspect.py", label="Inspect one image", icon=":material/biotech:")
    st.page_link("views/imagesets.py", label="Register image sets", icon=":material/photo_library:")
    st.page_link("views/train.py", label="Train or fine-tune a model", icon=":material/school:")
with right:
    st.page_link("views/jobs.py", label="Score sets under conditions (jobs)", icon=":material/pending_actions:")
    st.page_link("views/compare.py", label="Compare models", icon=":material/table_chart:")
    st.page_link("views/models.py", label="Models", icon=":material/model_training:")
