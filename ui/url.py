"""Filters kept in the page's URL (st.query_params), so a reload or a shared link shows the same view."""
from __future__ import annotations

from typing import Any, Sequence

import streamlit as st


def list_param(name: str, default: list, allowed: Sequence) -> list:
    """A comma-separated URL parameter as a list, keeping only values the widget offers."""
    raw = st.query_params.get(name)
    if raw is None:
        return list(default)
    values = [v for v in str(raw).split(",") if v]
    return [v for v in values if v in set(map(str, allowed))]


def number_param(name: str, default: float) -> float:
    """A numeric URL parameter (the default when absent or not a number)."""
    try:
        return float(st.query_params.get(name, default))
    except (TypeError, ValueError):
        return float(default)


def set_params(**values: Any) -> None:
    """Write the current filters into the URL; empty ones are removed."""
    for name, value in values.items():
        text = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else ("" if value is None else str(value))
        if text:
            if st.query_params.get(name) != text:
                st.query_params[name] = text
        elif name in st.query_params:
            del st.query_params[name]
