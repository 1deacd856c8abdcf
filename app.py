"""fraudlab: the frame of the app — navigation, first start, sidebar — and the server's HTTP API beside it.

`streamlit run app.py` finds the `st.App` below and serves it: the server imports this file once (no script
context: build the app with the API routes of api_server.py), then runs it as the page script of every session.
"""
import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

if get_script_run_ctx(suppress_warning=True) is None:  # imported by the server: UI and HTTP API, one process
    from api_server import api_routes

    app = st.App(__file__, routes=api_routes())
else:  # a session's page run
    from ui.state import ensure_ready, get_workspace, sidebar

    st.set_page_config(page_title="fraudlab", page_icon=":material/search:", layout="wide")

    PAGES = {
        "Investigate": [
            st.Page("pages/home.py", title="Overview", icon=":material/home:", default=True),
            st.Page("pages/queue.py", title="Case queue", icon=":material/inbox:"),
            st.Page("pages/case.py", title="Case detail", icon=":material/search:"),
            st.Page("pages/customer.py", title="Customer view", icon=":material/person:"),
            st.Page("pages/rings.py", title="Fraud rings", icon=":material/hub:"),
        ],
        "Monitor": [
            st.Page("pages/team.py", title="Team", icon=":material/groups:"),
            st.Page("pages/segments.py", title="Segments", icon=":material/donut_small:"),
            st.Page("pages/drift.py", title="Drift", icon=":material/trending_down:"),
            st.Page("pages/models.py", title="Models", icon=":material/model_training:"),
            st.Page("pages/feature_lab.py", title="Feature lab", icon=":material/science:"),
        ],
        "Data": [
            st.Page("pages/data.py", title="Load data", icon=":material/upload_file:"),
        ],
    }

    navigation = st.navigation(PAGES)
    workspace = get_workspace()
    ensure_ready(workspace)
    sidebar(workspace)
    navigation.run()
