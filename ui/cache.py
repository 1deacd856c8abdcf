"""One cached read for every page: a library function of the workspace, cached on (workspace, version or key).

    read(registry.list_models, ws)                      # cached until the workspace version changes
    read(registry.holdout_predictions, ws, model_id, key=model_id)   # immutable: cached per model id
"""
from __future__ import annotations

import importlib
from typing import Any, Callable

import streamlit as st

from fraudlab.workspace import Workspace
from ui.state import workspace_at


def _resolve(name: str) -> Callable:
    module, _, qualname = name.partition(":")
    target: Any = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


@st.cache_data(show_spinner=False, max_entries=512)
def _read(path: str, key: Any, name: str, args: tuple, kwargs: tuple) -> Any:
    return _resolve(name)(workspace_at(path), *args, **dict(kwargs))


@st.cache_resource(show_spinner=False, max_entries=8)
def _resource(path: str, key: Any, name: str, args: tuple) -> Any:
    return _resolve(name)(workspace_at(path), *args)


def read(fn: Callable, ws: Workspace, *args: Any, key: Any = None, **kwargs: Any) -> Any:
    """`fn(ws, *args, **kwargs)`, cached per workspace and `key` (default: the workspace version)."""
    return _read(str(ws.path), ws.version if key is None else key, f"{fn.__module__}:{fn.__qualname__}", args,
                 tuple(sorted(kwargs.items())))


def resource(fn: Callable, ws: Workspace, *args: Any, key: Any = None) -> Any:
    """An object built by `fn(ws, *args)` (a loaded model, a scorer) shared by every session until `key` changes."""
    return _resource(str(ws.path), ws.version if key is None else key, f"{fn.__module__}:{fn.__qualname__}", args)
