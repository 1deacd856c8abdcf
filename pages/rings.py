"""Fraud rings: customers linked by shared devices, IPs, cards and e-mails; rank, inspect, draw and decide a ring."""
import streamlit as st

from fraudlab import cases, rings
from fraudlab.charts.rings import parts_figure, ring_timeline_figure
from fraudlab.errors import FraudlabError
from ui import rings as cached
from ui.auth import allowed, me
from ui.cache import read
from ui.cases import open_case
from ui.state import get_workspace

ws = get_workspace()
st.title("Fraud rings")
if not ws.has_table("transactions") or not ws.count("transactions") or not rings.has_customers(ws):
    st.info("Rings link customers through shared identifiers, and this data has no customer_id values. "
            "Map a customer column on the **Load data** page.")
    st.stop()

with st.expander("Graph settings", expanded=False):
    c = st.columns(4)
    hub = c[0].number_input("Hub threshold (customers per identifier)", 2, 100_000, rings.DEFAULT_HUB_THRESHOLD,
                            help="An identifier shared by more customers than this (public Wi-Fi IP, placeholder "
                                 "e-mail) is a hub: it is left out so it does not glue everyone into one ring.")
    min_size = c[1].number_input("Minimum ring size", 2, 1_000, 2)
    kinds = c[2].multiselect("Identifiers that link customers", list(rings.IDENTIFIER_COLUMNS.values()),
                             default=list(rings.IDENTIFIER_COLUMNS.values()))
    window = c[3].number_input("Same merchant within (hours, 0 = off)", 0.0, 720.0, 0.0, step=1.0,
                               help="Also link customers who paid the same merchant in the same time window. Off by "
                                    "default: it links strangers who shop at the same place, so it finds more "
                                    "but noisier rings and takes longer (Louvain splits what it glues).")
try:
    with st.spinner("Finding rings…"):
        result = read(rings.find_rings, ws, int(hub), int(min_size), kinds=tuple(kinds),
                      merchant_window_hours=float(window) or None)
except FraudlabError as exc:
    st.error(str(exc))
    st.stop()

m = st.columns(4)
m[0].metric("Rings", f"{len(result.rings):,}")
m[1].metric("Customers in rings", f"{len(result.members):,}")
m[2].metric("Hubs left out", f"{len(result.hubs):,}", help=f"identifiers shared by more than {result.hub_threshold} customers")
m[3].metric("Found in", f"{result.stats.get('total_s', 0):.2f} s")
if len(result.hubs):
    with st.expander(f"{len(result.hubs):,} hub identifiers left out (shared by > {result.hub_threshold} customers)"):
        st.dataframe(result.hubs, width="stretch", hide_index=True)
if result.rings.empty:
    st.info("No rings: no identifier is shared by at least two customers below the hub threshold. "
            "Try a higher hub threshold or a smaller minimum size.")
    st.stop()

st.subheader("Ranked rings")
st.caption("Ring score = weighted mean of the parts (each 0–1): size, shared identifiers, labelled fraud share, "
           "model score of members, amount, time concentration, share of new accounts. Select a row to inspect it.")
table = cached.ring_table(result)
picked = st.dataframe(table, width="stretch", hide_index=True, on_select="rerun", selection_mode="single-row",
                      height=300, key="ring_table")
ids = table["ring_id"].tolist()
row = picked.selection.rows[0] if picked.selection.rows else 0
ring_id = st.selectbox("Ring", ids, index=row, format_func=lambda r: f"Ring {r}")
customers = tuple(result.customers_of(ring_id))
score = result.score_of(ring_id)

left, right = st.columns([1, 2])
left.plotly_chart(parts_figure(score), width="stretch")
members = read(rings.ring_members, ws, list(customers))
risk = dict(zip(members["customer_id"], members["max_score"].fillna(members["fraud_labels"].gt(0).astype(float))))
graph = rings.ring_graph(result, ring_id, risk)
with right:
    st.caption(f"Ring {ring_id} · {graph.message}. Dots = customers (green → red by highest score), shapes = "
               "shared identifiers (square device, triangle IP, diamond card, star e-mail).")
    if graph.truncated:
        st.warning(graph.message)
    st.iframe(graph.html, height=600)
    st.download_button("Download the graph (HTML)", graph.html, f"ring_{ring_id}.html", "text/html")

st.subheader(f"Members of ring {ring_id}")
chosen = st.dataframe(members, width="stretch", hide_index=True, on_select="rerun", selection_mode="single-row",
                      key=f"members_{ring_id}")
b = st.columns(2)
b[0].download_button("Download members (CSV)", members.to_csv(index=False), f"ring_{ring_id}_members.csv", "text/csv")
if chosen.selection.rows:
    member = members.iloc[chosen.selection.rows[0]]
    b[1].text(f"Member {member['customer_id']} · top case {member['top_case']}")  # plain text, never markup
    if b[1].button("Open this member's top case", type="primary"):
        open_case(str(member["top_case"]))
else:
    b[1].caption("Select a member to open their highest-scored transaction in Case detail.")

tx = read(rings.ring_transactions, ws, list(customers))
st.plotly_chart(ring_timeline_figure(tx), width="stretch")

st.subheader("Decide the whole ring")
if message := st.session_state.pop("ring_done", None):
    st.success(message)
if not allowed("bulk_decide", "decide a whole ring (reviewers do)"):
    st.stop()
open_ids = read(rings.ring_case_ids, ws, list(customers), "cases")
all_ids = read(rings.ring_case_ids, ws, list(customers), "all")
with st.form(f"decide_ring_{ring_id}", clear_on_submit=True):
    decision = st.radio("Decision", ["fraud", "legitimate", "escalate"], index=None, horizontal=True)
    scope = st.radio("Apply to", ["cases", "all"], horizontal=True, format_func=lambda s: {
        "cases": f"the members' open cases ({len(open_ids):,}: alerts not yet decided)",
        "all": f"all the members' transactions ({len(all_ids):,})"}[s])
    note = st.text_input("Note", placeholder="why (kept in the audit log)")
    if st.form_submit_button("Decide ring", type="primary"):
        targets = open_ids if scope == "cases" else all_ids
        if decision is None:
            st.warning("Choose a decision first: nothing is preselected.")
        elif not targets:
            st.warning("Nothing to decide: the members have no open cases. Choose 'all the members' transactions'.")
        else:
            st.session_state["ring_pending"] = {"ring": ring_id, "targets": list(targets), "decision": decision,
                                                "note": note or f"ring {ring_id} decision",
                                                "customers": list(customers)}


@st.dialog("Confirm the ring decision")
def _confirm_ring(pending: dict) -> None:
    st.write(f"Record **{pending['decision']}** on {len(pending['targets']):,} transactions of ring {pending['ring']} "
             f"({len(pending['customers'])} customers)?")
    st.text(", ".join(pending["customers"][:30]) + (" …" if len(pending["customers"]) > 30 else ""))
    ok, cancel = st.columns(2)
    if ok.button("Confirm", type="primary", key="ring_confirm"):
        done = cases.decide_many(ws, pending["targets"], pending["decision"], me(), pending["note"])
        st.session_state.pop("ring_pending", None)
        st.session_state["ring_done"] = (f"Marked {len(done):,} transactions of ring {pending['ring']} as "
                                         f"**{pending['decision']}** (audited).")
        st.rerun()
    if cancel.button("Cancel", key="ring_cancel"):
        st.session_state.pop("ring_pending", None)
        st.rerun()


pending = st.session_state.get("ring_pending")
if pending and pending["ring"] == ring_id:
    _confirm_ring(pending)
