"""Streamlit glue for the queue and case pages: cached scorer and queries, opening a case."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from fraudlab.privacy import mask_frame
from fraudlab.registry import models_stamp
from fraudlab.scoring import Scorer
from fraudlab.workspace import Workspace
from ui.cache import resource

STATUS_ICONS = {"open": "🟡 open", "escalated": "🟠 escalated", "fraud": "🔴 fraud", "legitimate": "🟢 legitimate"}


def scorer(ws: Workspace) -> Scorer:
    """The fallback-chain scorer, loaded once per champion (decisions do not reload the models)."""
    return resource(Scorer, ws, key=models_stamp(ws))


def for_display(frame: pd.DataFrame) -> pd.DataFrame:
    """Queue rows as analysts read them: masked cards, status badges, rounded numbers."""
    out = mask_frame(frame)
    if "status" in out:
        out["status"] = out["status"].map(STATUS_ICONS).fillna(out["status"])
    return out


def open_case(case_id: str) -> None:
    """Go to the case page for this case."""
    st.session_state["case_id"] = case_id
    st.switch_page("pages/case.py")


def chosen_case() -> str | None:
    """The case asked for by ?case= or chosen on another page."""
    from_url = st.query_params.get("case")
    if from_url:
        st.session_state["case_id"] = from_url
    return st.session_state.get("case_id")


def table_or_note(frame: pd.DataFrame, empty: str) -> None:
    """A table, or a short note saying why there is nothing to show."""
    if frame.empty:
        st.caption(empty)
    else:
        st.dataframe(frame, width="stretch", hide_index=True)
