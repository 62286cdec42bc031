"""Links between pages: where a page with a given selection lives (pure, no Streamlit).

The Compare page honours ``?run=ID`` (shows that run's model, its set and condition) and
``?model=NAME`` (pre-selects the model). From another page::

    st.page_link("views/compare.py", label="Compare", query_params=compare_query_for_run(7))
    st.markdown(f"[Compare]({compare_url_for_run(7)})")   # or a plain link
"""

from __future__ import annotations

from urllib.parse import urlencode

COMPARE_URL_PATH = "compare"  # dashboard/app.py serves views/compare.py here
RUN_PARAM = "run"
MODEL_PARAM = "model"


def compare_query_for_run(run_id: int) -> dict[str, str]:
    """Query parameters that open Compare on one run."""
    return {RUN_PARAM: str(int(run_id))}


def compare_url_for_run(run_id: int) -> str:
    """Relative URL of the Compare page showing one run (``compare?run=7``)."""
    return f"{COMPARE_URL_PATH}?{urlencode(compare_query_for_run(run_id))}"
