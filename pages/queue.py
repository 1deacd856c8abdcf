"""Case queue: a customer's alerts grouped into cases, ranked by risk and amount at risk; filters kept in the URL;
take the next case; bulk decisions that cannot reach a case nobody looked at; CSV export."""
import streamlit as st

from fraudlab import cases
from fraudlab.auth.permissions import can
from fraudlab.names import plain_name
from ui import cases as ui
from ui.auth import me
from ui.cache import read
from ui.state import get_workspace
from ui.url import list_param, number_param, set_params

ws = get_workspace()
actor = me()
st.title("Case queue")

if ws.count("scores") == 0 or not ws.has_table("cases"):
    st.info("No scored transactions yet: load labelled data on **Load data**, then train a model on **Models**.")
    st.stop()
budget = read(cases.alert_budget, ws)
opts = read(cases.queue_options, ws)
st.caption(f"A case groups one customer's alerts less than {cases.CASE_WINDOW_HOURS:g} hours apart. An alert is a "
           f"payment the model scored at or above the alert threshold ({budget['threshold']:.4g}, set so that about "
           f"{budget['budget_per_day'] or '—'} alerts a day are raised). Score: the riskiest alert's chance of fraud "
           f"(0–1). Expected loss: score × amount, added over the case's alerts.")
c = st.columns(4)
c[0].metric("Cases", f"{budget['cases']:,}")
c[1].metric("Alerts", f"{budget['alerts']:,}")
c[2].metric("Alerts per day", f"{budget['per_day']:.1f}")
c[3].metric("Daily alert budget", budget["budget_per_day"] or "—")

with st.expander("Filters", expanded=False):
    f1, f2, f3 = st.columns(3)
    statuses = f1.multiselect("Status", cases.STATUSES, default=list_param("status", ["open", "escalated"],
                                                                            cases.STATUSES), key="q_status")
    families = f1.multiselect("Leading reason", opts["reason_families"],
                              default=list_param("reason", [], opts["reason_families"]), key="q_reason")
    countries = f2.multiselect("Country", opts["countries"], default=list_param("country", [], opts["countries"]),
                               key="q_country")
    channels = f2.multiselect("Channel", opts["channels"], default=list_param("channel", [], opts["channels"]),
                              key="q_channel")
    segments = f3.multiselect("Segment", opts["segments"], default=list_param("segment", [], opts["segments"]),
                              key="q_segment") if opts["segments"] else []
    mine = f3.checkbox("Only my cases", value=st.query_params.get("mine") == "1", key="q_mine")
    lo = f3.slider("Lowest score", 0.0, 1.0, number_param("min_score", 0.0), 0.01, key="q_min_score")
    amount = f2.number_input("Lowest amount", 0.0, value=number_param("min_amount", 0.0), key="q_min_amount")
filters = cases.QueueFilter(min_score=lo or None, statuses=tuple(statuses), reason_families=tuple(families),
                            countries=tuple(countries), channels=tuple(channels), segments=tuple(segments),
                            min_amount=amount or None, assignee=actor.name if mine else None)

left, mid, right = st.columns([2, 2, 3])
sorts = list(cases.SORTS)
sort = left.selectbox("Rank by", sorts, index=sorts.index(st.query_params.get("sort", "score"))
                      if st.query_params.get("sort") in sorts else 0, format_func=plain_name, key="q_sort")
page_no = mid.number_input("Page", min_value=1, value=int(number_param("page", 1)), step=1, key="q_page")
set_params(status=statuses, reason=families, country=countries, channel=channels, segment=segments,
           mine="1" if mine else None, min_score=lo or None, min_amount=amount or None, sort=sort, page=page_no)
if can(actor, "take_case") and right.button("Take the next case", icon=":material/play_arrow:", type="primary",
                                            key="take_next"):
    case_id = cases.next_case(ws, actor, filters)
    if case_id:
        ui.open_case(case_id)
    st.info("No free case matches these filters.")

rows, total = read(cases.queue, ws, filters, sort, cases.PAGE_SIZE, (page_no - 1) * cases.PAGE_SIZE,
                   key=(ws.version, cases.assignment_stamp(ws)))
st.caption(f"{total:,} cases match · page {page_no} of {max(1, -(-total // cases.PAGE_SIZE))} · "
           f"SLA {cases.SLA_HOURS} hours from the first alert")
if rows.empty:
    st.info("No cases match these filters. Widen the status or score filters.")
    st.stop()
shown = ui.queue_table(rows)
table_key = f"queue_table_{st.session_state.get('queue_round', 0)}"  # a new key clears the selection
picked = st.dataframe(shown, width="stretch", hide_index=True, on_select="rerun", selection_mode="multi-row",
                      key=table_key, column_config=ui.QUEUE_COLUMN_CONFIG)
selected = [rows["case_id"].iloc[i] for i in picked.selection.rows]
st.download_button("Download this page (CSV)", ui.csv_bytes(shown), "case_queue.csv", "text/csv",
                   key="queue_csv")

if selected:
    st.subheader(f"{len(selected)} selected")
    a, b = st.columns([1, 3])
    if a.button("Open the first selected case", key="open_selected"):
        ui.open_case(selected[0])
    with b:
        if can(actor, "bulk_decide"):
            ui.bulk_decision_form(ws, selected, rows, actor)
        else:
            st.caption("Deciding several cases at once is for reviewers: open each case to decide it.")
else:
    st.caption("Select rows (tick the boxes on the left) to open a case or decide several at once, e.g. one "
               "card-testing burst.")

if not can(actor, "assign"):
    st.stop()
with st.expander("Assign open cases to the team"):
    team = st.text_input("Analysts (comma-separated)", value="", key="assign_team")
    cap = st.number_input("At most this many open cases each", 1, 500, 20, key="assign_cap")
    if st.button("Assign round-robin", key="assign"):
        plan = cases.assign_round_robin(ws, team.split(","), int(cap), who=actor)
        st.success(f"Assigned {len(plan)} cases.")
