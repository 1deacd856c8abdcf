"""Shared Streamlit state: the one workspace of this server, the refresh on start, the sidebar."""
from __future__ import annotations

import streamlit as st

from fraudlab import pipeline
from fraudlab.config import load_config
from fraudlab.errors import WorkspaceError
from fraudlab.overview import workspace_summary
from fraudlab.text import markdown_literal
from fraudlab.workspace import Workspace


@st.cache_resource(show_spinner=False)
def workspace_at(path: str) -> Workspace:
    """The Workspace of one file, opened once per server process."""
    return Workspace(path)


def get_workspace() -> Workspace:
    """The one Workspace of this server process; a clear message (no paths, no traceback) when it cannot open."""
    try:
        return workspace_at(str(load_config().workspace_path))
    except WorkspaceError as exc:
        busy = "lock" in str(exc).lower()
        st.error("The workspace is in use by another fraudlab program (a command-line job such as ingest, train or "
                 "drift). Reload this page when that job has finished." if busy else
                 "The workspace cannot be opened. The server log has the details; an administrator can check it.")
        st.stop()


def ensure_ready(ws: Workspace) -> None:
    """Run the pipeline's refresh when something is missing or stale (first start, data loaded elsewhere)."""
    if not pipeline.is_stale(ws):
        return
    bar = st.progress(0.0, text="Bringing the workspace up to date: sample, features, model, scores…")
    steps = pipeline.refresh(ws, lambda fraction, message: bar.progress(min(max(fraction, 0.0), 1.0), text=message))
    bar.empty()
    for step in steps:
        st.toast(step)


def toast_after_rerun(message: str) -> None:
    """Keep a toast for the next run: one sent right before st.rerun() may never reach the browser."""
    st.session_state.setdefault("pending_toasts", []).append(message)


def show_pending_toasts() -> None:
    """Show the toasts kept by :func:`toast_after_rerun` (the frame calls this on every run)."""
    for message in st.session_state.pop("pending_toasts", []):
        st.toast(message)


def sidebar(ws: Workspace) -> None:
    """Workspace facts, shown on every page."""
    from ui.cache import read

    info = read(workspace_summary, ws)
    with st.sidebar:
        st.caption("Workspace")
        st.markdown(f"**{info.rows:,}** transactions · **{info.customers:,}** customers")
        if info.first_ts is not None:
            st.markdown(f"{info.first_ts:%Y-%m-%d} → {info.last_ts:%Y-%m-%d}")
        if info.fraud_rate is not None:
            st.markdown(f"Labelled fraud rate **{info.fraud_rate:.2%}**")
        if info.last_ingest:
            st.caption(f"Last load: {markdown_literal(info.last_ingest)}")  # a file name is data, not markup
        if info.quarantined:
            st.caption(f"{info.quarantined:,} rows in quarantine")
        st.caption(f"{markdown_literal(ws.path.name)} · version {info.version}")
