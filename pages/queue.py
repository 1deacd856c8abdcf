"""Case queue: alerts ranked by risk, filters, the daily budget, taking the next case, bulk decisions, export."""
import streamlit as st

from fraudlab import cases
from fraudlab.errors import FraudlabError
from ui import cases as ui
from ui.cache import read
from ui.state import analyst_name, get_workspace

ws = get_workspace()
me = analyst_name()
st.title("Case queue")

if ws.count("scores") == 0:
    st.info("No scored transactions yet: load labelled data and train a model on the **Models** page.")
    st.stop()
budget = read(cases.alert_budget, ws)
opts = read(cases.queue_options, ws)
c = st.columns(4)
c[0].metric("Cases", f"{budget['cases']:,}")
c[1].metric("Alerts per day", f"{budget['per_day']:.1f}")
c[2].metric("Daily alert budget", budget["budget_per_day"] or "—")
c[3].metric("Alert threshold", f"{budget['threshold']:.6f}")

with st.expander("Filters", expanded=False):
    f1, f2, f3 = st.columns(3)
    statuses = f1.multiselect("Status", cases.STATUSES, default=["open", "escalated"])
    families = f1.multiselect("Leading reason", opts["reason_families"])
    countries = f2.multiselect("Country", opts["countries"])
    channels = f2.multiselect("Channel", opts["channels"])
    segments = f3.multiselect("Segment", opts["segments"]) if opts["segments"] else []
    mine = f3.checkbox("Only my cases")
    lo, hi = f3.slider("Score", 0.0, 1.0, (0.0, 1.0), 0.01)
    amount = f2.number_input("Minimum amount", 0.0, value=0.0)
filters = cases.QueueFilter(min_score=lo or None, max_score=hi if hi < 1 else None, statuses=tuple(statuses),
                            reason_families=tuple(families), countries=tuple(countries), channels=tuple(channels),
                            segments=tuple(segments), min_amount=amount or None, assignee=me if mine else None)

left, mid, right = st.columns([2, 2, 3])
sort = left.selectbox("Rank by", list(cases.SORTS), format_func=lambda s: s.replace("_", " "))
page_no = mid.number_input("Page", min_value=1, value=1, step=1)
if right.button("▶ Take the next case", type="primary"):
    case_id = cases.next_case(ws, me, filters)
    if case_id:
        ui.open_case(case_id)
    st.info("No free case matches these filters.")

rows, total = read(cases.queue, ws, filters, sort, cases.PAGE_SIZE, (page_no - 1) * cases.PAGE_SIZE,
                   key=(ws.version, cases.assignment_stamp(ws)))
st.caption(f"{total:,} cases match · page {page_no} of {max(1, -(-total // cases.PAGE_SIZE))} · SLA {cases.SLA_HOURS} h")
if rows.empty:
    st.info("No cases match these filters. Widen the status or score filters.")
    st.stop()
shown = ui.for_display(rows)[[c for c in cases.QUEUE_COLUMNS if c in rows]]
picked = st.dataframe(shown, width="stretch", hide_index=True, on_select="rerun", selection_mode="multi-row",
                      key="queue_table", column_config={"score": st.column_config.ProgressColumn(
                          "score", min_value=0.0, max_value=1.0, format="%.3f")})
selected = [rows["case_id"].iloc[i] for i in picked.selection.rows]
st.download_button("Download this page (CSV)", shown.to_csv(index=False), "case_queue.csv", "text/csv")

if selected:
    st.subheader(f"{len(selected)} selected")
    a, b = st.columns([1, 3])
    if a.button("Open the first selected case"):
        ui.open_case(selected[0])
    with b.form("bulk"):
        decision = st.radio("Decide all selected", cases.DECISIONS, horizontal=True)
        note = st.text_input("Note (e.g. 'card-testing burst')")
        if st.form_submit_button("Record decisions"):
            try:
                done = cases.decide_many(ws, selected, decision, me, note)
                st.toast(f"Recorded '{decision}' on {len(done)} cases")
                st.rerun()
            except FraudlabError as exc:
                st.error(str(exc))
else:
    st.caption("Select rows to open a case or decide several at once (e.g. a card-testing burst).")

with st.expander("Assign open cases to the team"):
    team = st.text_input("Analysts (comma-separated)", value=me)
    cap = st.number_input("At most this many open cases each", 1, 500, 20)
    if st.button("Assign round-robin"):
        plan = cases.assign_round_robin(ws, team.split(","), int(cap), who=me)
        st.success(f"Assigned {len(plan)} cases.")
