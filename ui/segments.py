"""Cached reads for the Segments page (keyed on the workspace version)."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from fraudlab import segments
from ui.state import _workspace_for


@st.cache_data(show_spinner=False, max_entries=4)
def summary(path: str, version: int, threshold: float) -> pd.DataFrame:
    return segments.segment_summary(_workspace_for(path), threshold)


@st.cache_data(show_spinner=False, max_entries=4)
def profiles(path: str, version: int) -> pd.DataFrame:
    return segments.segment_profiles(_workspace_for(path))


@st.cache_data(show_spinner=False, max_entries=4)
def weekly(path: str, version: int) -> pd.DataFrame:
    return segments.weekly_trend(_workspace_for(path))


@st.cache_data(show_spinner="Training the propensity model…", max_entries=4)
def propensity(path: str, version: int) -> segments.Propensity:
    return segments.propensity(_workspace_for(path))


@st.cache_data(show_spinner=False, max_entries=16)
def members(path: str, version: int, segment_id: int) -> pd.DataFrame:
    return segments.segment_members(_workspace_for(path), segment_id)
