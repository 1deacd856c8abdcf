"""fraudlab: the frame of the app — navigation, first start, sidebar."""
import streamlit as st

from ui.state import ensure_ready, get_workspace, sidebar

st.set_page_config(page_title="fraudlab", page_icon="🔎", layout="wide")

PAGES = {
    "Investigate": [
        st.Page("pages/home.py", title="Overview", icon="🏠", default=True),
        st.Page("pages/queue.py", title="Case queue", icon="📥"),
        st.Page("pages/case.py", title="Case detail", icon="🔍"),
        st.Page("pages/rings.py", title="Fraud rings", icon="🕸️"),
    ],
    "Monitor": [
        st.Page("pages/segments.py", title="Segments", icon="👥"),
        st.Page("pages/drift.py", title="Drift", icon="📉"),
        st.Page("pages/models.py", title="Models", icon="🧠"),
    ],
    "Data": [
        st.Page("pages/data.py", title="Load data", icon="📂"),
    ],
}

navigation = st.navigation(PAGES)
workspace = get_workspace()
ensure_ready(workspace)
sidebar(workspace)
navigation.run()
