"""The HTTP API served beside the UI (Starlette routes, mounted by `st.App` in app.py): health and live scoring.

Pure library: the routes take a function returning the server's one open Workspace, so the pages and the API share
one DuckDB connection and one write lock.
"""
from fraudlab.api.keys import create_key, is_demo, key_name, list_keys, revoke_key
from fraudlab.api.routes import MAX_BODY_BYTES, build_routes
from fraudlab.api.service import LiveScoring, stop_live

__all__ = ["MAX_BODY_BYTES", "LiveScoring", "build_routes", "create_key", "is_demo", "key_name", "list_keys",
           "revoke_key", "stop_live"]
