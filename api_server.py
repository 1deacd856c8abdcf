"""The HTTP API half of the server `streamlit run app.py` starts: fraudlab.api's routes over the UI's workspace.

app.py builds `st.App(app.py, routes=api_routes())` when the server imports it; the pages and these routes then
live in one process and share one open Workspace (ui.state.workspace_at, one DuckDB connection, one write lock).
"""
from __future__ import annotations

import os

from starlette.routing import Route

from fraudlab.api import build_routes
from fraudlab.config import load_config
from fraudlab.workspace import Workspace


def shared_workspace() -> Workspace:
    """The server's one Workspace: the very object the pages get from ui.state."""
    from ui.state import workspace_at

    return workspace_at(str(load_config().workspace_path))


def api_routes() -> list[Route]:
    """The API's routes (FRAUDLAB_API_BUDGET_MS sets the per-model budget of live scoring, default 50 ms)."""
    budget = os.environ.get("FRAUDLAB_API_BUDGET_MS")
    return build_routes(shared_workspace, budget_ms=float(budget) if budget else None)
