"""Customer view: every case, alert, decision, shared identifier, ring and segment of one customer, and the timeline."""
import streamlit as st

from fraudlab import cases, rings
from fraudlab.charts.cases import history_timeline_figure
from fraudlab.errors import FraudlabError
from fraudlab.text import markdown_literal
from ui import cases as ui
from ui.cache import read
from ui.state import get_workspace

ws = get_workspace()
st.title("Customer view")
customer = st.text_input("Customer id", value=st.query_params.get("customer", ""), key="customer_input").strip()
if not customer:
    st.info("Open a customer from a case (**Customer view** link), or type a customer id above.")
    st.stop()
st.query_params["customer"] = customer
view = read(cases.customer_view, ws, customer)
if view.history.empty:
    st.warning("No payment of this customer in the workspace.")
    st.stop()

c = st.columns(5)
c[0].metric("Payments", f"{len(view.history):,}")
c[1].metric("Cases", f"{len(view.cases):,}", help=f"{int((view.cases['status'] == 'open').sum())} open")
c[2].metric("Alerts", f"{len(view.alerts):,}")
c[3].metric("Alerts decided fraud", f"{int((view.alerts['status'] == 'fraud').sum()):,}")
c[4].metric("Segment", view.segment or "not segmented")
st.caption("An alert is a payment the model scored at or above the alert threshold; a case groups the customer's "
           f"alerts less than {cases.CASE_WINDOW_HOURS:g} hours apart.")
st.plotly_chart(history_timeline_figure(view.history), width="stretch")

st.subheader("Cases")
ui.table_or_note(ui.readable(view.cases[[c for c in ("case_id", "first_ts", "alerts", "open_alerts", "score",
                                                     "amount", "status", "decided_by", "close_reason")
                                         if c in view.cases]]), "No case for this customer.")
if len(view.cases):
    chosen = st.selectbox("Open a case", view.cases["case_id"].tolist(), index=None, key="customer_case")
    if chosen:
        ui.open_case(chosen)
st.subheader("Alerts")
ui.table_or_note(ui.readable(view.alerts), "No alert for this customer.")
st.subheader("Decisions")
ui.table_or_note(ui.readable(view.decisions), "Nobody decided on this customer's alerts yet.")
st.subheader("Devices, IPs, cards and e-mails shared with other customers")
ui.table_or_note(ui.readable(view.linked), "This data has no device, IP, card or e-mail column.")

st.subheader("Fraud ring")
try:
    found = read(rings.find_rings, ws, rings.DEFAULT_HUB_THRESHOLD, 2)
except FraudlabError as exc:
    st.caption(f"Rings cannot be found here: {markdown_literal(exc)}")
else:
    member = found.members[found.members["customer_id"] == customer]
    if member.empty:
        st.caption("Not part of any ring at the default settings.")
    else:
        ring_id = int(member["ring_id"].iloc[0])
        others = [c for c in found.customers_of(ring_id) if c != customer]
        st.text(f"Ring {ring_id} (rank {ring_id} of {len(found.rings)}), with {len(others)} other customers: "
                + ", ".join(others[:20]) + (" …" if len(others) > 20 else ""))
        st.page_link("pages/rings.py", label="Open the Fraud rings page", icon=":material/hub:")
st.download_button("Download this customer's payments (CSV)", ui.csv_bytes(ui.readable(view.history)),
                   f"customer_{customer}.csv", "text/csv", key="customer_csv")
