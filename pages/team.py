"""Team: the manager's view of the case work — decisions per analyst and day, time to decision, SLA breaches,
agreement of decisions with labels that arrived later, and a random sample of closed cases for second review."""
import plotly.express as px
import streamlit as st

from fraudlab import cases
from fraudlab.errors import FraudlabError
from ui import cases as ui
from ui.auth import allowed, me
from ui.cache import read
from ui.state import get_workspace

ws = get_workspace()
st.title("Team")
st.caption(f"Time to decision: hours from a case's first alert to its first decision. SLA: {cases.SLA_HOURS} hours. "
           "Agreement: the share of an analyst's fraud / legitimate calls that match a label the source data "
           "brought later (a chargeback, a confirmation); empty when no such label exists yet.")
if not ws.has_table("cases"):
    st.info("No cases yet: the queue fills once transactions are scored.")
    st.stop()
report = read(cases.team_report, ws)
c = st.columns(4)
c[0].metric("Open cases", f"{report.open_cases:,}")
c[1].metric("Open past the SLA", f"{report.open_over_sla:,}")
c[2].metric("Decisions", f"{int(report.per_day['decisions'].sum()):,}")
c[3].metric("Analysts", f"{len(report.per_analyst):,}")
if report.per_day.empty:
    st.info("Nobody has decided a case yet. Decisions appear here per analyst and day.")
else:
    fig = px.bar(report.per_day.assign(day=report.per_day["day"].astype(str)), x="day", y="decisions",
                 color="analyst", title="Decisions per analyst per day")
    fig.update_xaxes(type="category", title=None)
    fig.update_layout(height=320, margin={"l": 10, "r": 10, "t": 40, "b": 10}, legend={"orientation": "h"})
    st.plotly_chart(fig, width="stretch")
    table = ui.readable(report.per_analyst)
    st.dataframe(table, width="stretch", hide_index=True, column_config={
        "Agreement with labels": st.column_config.ProgressColumn("Agreement with labels", min_value=0.0,
                                                                 max_value=1.0, format="%.0f%%"),
        "Median hours to decision": st.column_config.NumberColumn(format="%.1f"),
        "P90 hours to decision": st.column_config.NumberColumn(format="%.1f")})
    st.download_button("Download (CSV)", ui.csv_bytes(table), "team.csv", "text/csv", key="team_csv")

st.subheader("Quality assurance: a random sample of closed cases")
n = st.number_input("Sample size", 1, 200, 10, key="qa_n")
seed = st.number_input("Sample number (same number, same sample)", 0, 10_000, 0, key="qa_seed")
sample = read(cases.qa_sample, ws, int(n), int(seed))
if sample.empty:
    st.caption("No closed case to sample yet.")
else:
    st.dataframe(ui.readable(sample), width="stretch", hide_index=True)
    if allowed("qa_review", "send cases for second review") and st.button(
            f"Send these {len(sample)} cases for second review", key="qa_send"):
        try:
            sent = cases.send_for_review(ws, sample["case_id"].tolist(), me())
            st.success(f"{sent} cases are back in the queue as escalated, noted '{cases.QA_NOTE}'.")
        except FraudlabError as exc:
            st.error(str(exc))
