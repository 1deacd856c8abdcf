"""fraudlab: the frame of the app — who is acting, navigation (only the pages the role sees), first start, sidebar
— and the server's HTTP API beside it.

`streamlit run app.py` finds the `st.App` below and serves it: the server imports this file once (no script
context: build the app with the API routes of api_server.py), then runs it as the page script of every session.
"""
import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

if get_script_run_ctx(suppress_warning=True) is None:  # imported by the server: UI and HTTP API, one process
    from api_server import api_routes, server_lifespan

    app = st.App(__file__, routes=api_routes(), lifespan=server_lifespan)
else:  # a session's page run
    from fraudlab.auth.permissions import can_see
    from ui.auth import current_actor, logout_button
    from ui.state import ensure_ready, get_workspace, show_pending_toasts, sidebar

    st.set_page_config(page_title="fraudlab", page_icon=":material/search:", layout="wide")

    SECTIONS = {
        "Investigate": [
            ("home", "Overview", ":material/home:"),
            ("queue", "Case queue", ":material/inbox:"),
            ("case", "Case detail", ":material/search:"),
            ("customer", "Customer view", ":material/person:"),
            ("rings", "Fraud rings", ":material/hub:"),
        ],
        "Monitor": [
            ("team", "Team", ":material/groups:"),
            ("segments", "Segments", ":material/donut_small:"),
            ("drift", "Drift", ":material/trending_down:"),
            ("models", "Models", ":material/model_training:"),
            ("feature_lab", "Feature lab", ":material/science:"),
            ("jobs", "Jobs", ":material/work_history:"),
        ],
        "Admin": [
            ("data", "Load data", ":material/upload_file:"),
            ("users", "Users", ":material/manage_accounts:"),
            ("audit", "Audit trail", ":material/history:"),
        ],
    }

    workspace = get_workspace()
    actor = current_actor(workspace)
    pages = {
        section: [st.Page(f"pages/{stem}.py", title=title, icon=icon, default=stem == "home")
                  for stem, title, icon in entries if can_see(actor, stem)]
        for section, entries in SECTIONS.items()
    }
    navigation = st.navigation({section: entries for section, entries in pages.items() if entries}, expanded=True)
    ensure_ready(workspace)
    with st.sidebar:
        logout_button(actor)
    sidebar(workspace)
    show_pending_toasts()
    navigation.run()
