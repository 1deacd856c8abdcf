"""Audit trail: every write and every refused action or failed login, by proven identity; filter by person and action."""
import streamlit as st

from fraudlab.audit import audit_choices, audit_trail
from ui.cache import read
from ui.cases import csv_bytes, readable
from ui.state import get_workspace

ws = get_workspace()
st.title("Audit trail")
st.caption("Every change in this workspace, who made it (the logged-in person and role, or the operating-system user "
           "for the command line), refused actions and failed logins. Nothing here can be edited.")
people, actions = read(audit_choices, ws)
left, right = st.columns(2)
who = left.multiselect("People", people, key="audit_people")
what = right.multiselect("Actions", actions, key="audit_actions")
trail = read(audit_trail, ws, who, what)
if trail.empty:
    st.info("Nothing recorded for these filters.")
    st.stop()
shown = readable(trail)
st.dataframe(shown, width="stretch", hide_index=True)
st.download_button("Download (CSV)", csv_bytes(shown), "audit_trail.csv", "text/csv", key="audit_csv")
