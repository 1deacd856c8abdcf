"""Shared Streamlit state: the cached workspace connection, the sidebar, first-start handling."""
from __future__ import annotations

import streamlit as st

from fraudlab.bootstrap import first_start, needs_first_start
from fraudlab.config import load_config
from fraudlab.overview import WorkspaceSummary, workspace_summary
from fraudlab.workspace import Workspace


@st.cache_resource(show_spinner=False)
def _workspace_for(path: str) -> Workspace:
    return Workspace(path)


def get_workspace() -> Workspace:
    """The one Workspace of this server process (per configured path)."""
    return _workspace_for(str(load_config().workspace_path))


@st.cache_data(show_spinner=False, max_entries=8)
def _summary(path: str, version: int) -> WorkspaceSummary:
    return workspace_summary(_workspace_for(path))


def summary(ws: Workspace) -> WorkspaceSummary:
    """Workspace summary cached on the workspace version."""
    return _summary(str(ws.path), ws.version)


def ensure_ready(ws: Workspace) -> None:
    """Bring the workspace up to date (sample on first start, features, first model, scores) with a progress bar."""
    if not needs_first_start(ws):
        return
    bar = st.progress(0.0, text="Bringing the workspace up to date: sample, features, model, scores…")
    steps = first_start(ws, lambda fraction, message: bar.progress(min(max(fraction, 0.0), 1.0), text=message))
    bar.empty()
    for step in steps:
        st.toast(step)


def analyst_name() -> str:
    """The analyst name typed in the sidebar (defaults to FRAUDLAB_ANALYST)."""
    return st.session_state.get("analyst") or load_config().analyst


def sidebar(ws: Workspace) -> None:
    """Workspace facts and the analyst's name, shown on every page."""
    info = summary(ws)
    with st.sidebar:
        st.text_input("Analyst", key="analyst", value=st.session_state.get("analyst", load_config().analyst))
        st.caption("Workspace")
        st.markdown(f"**{info.rows:,}** transactions · **{info.customers:,}** customers")
        if info.first_ts is not None:
            st.markdown(f"{info.first_ts:%Y-%m-%d} → {info.last_ts:%Y-%m-%d}")
        if info.fraud_rate is not None:
            st.markdown(f"Labelled fraud rate **{info.fraud_rate:.2%}**")
        if info.last_ingest:
            st.caption(f"Last load: {info.last_ingest}")
        if info.quarantined:
            st.caption(f"{info.quarantined:,} rows in quarantine")
        st.caption(f"`{ws.path.name}` · version {info.version}")
