"""The HTTP API half of the server `streamlit run app.py` starts: fraudlab.api's routes over the UI's workspace, and
the server's lifespan: its job runner and the `<workspace>.server.json` file the command line finds it by.

app.py builds `st.App(app.py, routes=api_routes(), lifespan=server_lifespan)` when the server imports it; the pages,
these routes and the background jobs then live in one process and share one open Workspace (ui.state.workspace_at,
one DuckDB connection, one write lock).
"""
from __future__ import annotations

import logging
import os
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from starlette.routing import Route

from fraudlab.api import build_routes, stop_live
from fraudlab.api.routes import live_service, serving_interpreter
from fraudlab.api.writer import flush_all
from fraudlab.config import load_config
from fraudlab.errors import WorkspaceError
from fraudlab.handoff import ServerInfo, remove_server_file, write_server_file
from fraudlab.jobs_queue import runner_for, stop_runner
from fraudlab.workspace import Workspace

LOG = logging.getLogger("fraudlab.server")
_announced: dict[str, ServerInfo] = {}  # "server": this process's announcement, while it runs


def shared_workspace() -> Workspace:
    """The server's one Workspace: the very object the pages get from ui.state."""
    from ui.state import workspace_at

    return workspace_at(str(load_config().workspace_path))


def server_token() -> str | None:
    """The local token this server announced (None before start or when it could not announce)."""
    info = _announced.get("server")
    return info.token if info else None


def api_budget_ms() -> float | None:
    """FRAUDLAB_API_BUDGET_MS: the per-model budget of live scoring (None: the default, 50 ms)."""
    budget = os.environ.get("FRAUDLAB_API_BUDGET_MS")
    return float(budget) if budget else None


def api_routes() -> list[Route]:
    """The API's routes (with the live scoring budget of `api_budget_ms`)."""
    return build_routes(shared_workspace, budget_ms=api_budget_ms(), server_token=server_token)


@asynccontextmanager
async def server_lifespan(_app: Any) -> AsyncIterator[None]:
    """While the server runs: its job runner works and `<workspace>.server.json` announces it (removed at exit)."""
    from streamlit import config as st_config

    serving_interpreter()

    try:
        ws = shared_workspace()
    except WorkspaceError as exc:  # e.g. a direct command-line job holds the lock: the pages say so too
        LOG.warning("no background jobs: the workspace cannot be opened (%s)", exc)
        ws = None
    if ws is not None:
        runner_for(ws)  # fails jobs a previous server left running
        live_service(ws, budget_ms=api_budget_ms())  # its history warms in the background: no first event waits
        _announced["server"] = write_server_file(ws.path, int(st_config.get_option("server.port")))
    try:
        yield None
    finally:
        info = _announced.pop("server", None)
        flush_all()  # live events answered but not committed yet (what cannot be stays in the live log)
        stop_live()  # the live scorers' threads end before the workspace closes
        if ws is not None:
            if info is not None:
                remove_server_file(ws.path, info)
            stop_runner(ws)
