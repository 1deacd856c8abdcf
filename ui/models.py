"""Cached reads for the Models page (keyed on the workspace version)."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from fraudlab import registry
from fraudlab.model import cost_table
from ui.state import _workspace_for


@st.cache_data(show_spinner=False, max_entries=8)
def models(path: str, version: int) -> pd.DataFrame:
    return registry.list_models(_workspace_for(path))


@st.cache_data(show_spinner=False, max_entries=16)
def record(path: str, version: int, model_id: str) -> dict:
    return registry.get_model(_workspace_for(path), model_id)


@st.cache_data(show_spinner=False, max_entries=16)
def costs(path: str, model_id: str, cost_review: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    predictions = registry.holdout_predictions(_workspace_for(path), model_id)
    return predictions, cost_table(predictions, cost_review)


@st.cache_data(show_spinner="Computing SHAP importance…", max_entries=8)
def importance(path: str, model_id: str) -> pd.DataFrame:
    return registry.importance(_workspace_for(path), model_id)


@st.cache_data(show_spinner=False, max_entries=8)
def events(path: str, version: int) -> pd.DataFrame:
    return registry.model_events(_workspace_for(path))
