"""Case detail: the transaction, its score and reasons, the customer's history, linked entities, the decision."""
import streamlit as st

from fraudlab import cases
from fraudlab.case_report import case_report_html
from fraudlab.charts.cases import history_timeline_figure, waterfall_figure
from fraudlab.errors import FraudlabError
from fraudlab.text import markdown_literal
from ui import cases as ui
from ui.state import analyst_name, get_workspace

ws = get_workspace()
me = analyst_name()
st.title("Case detail")

case_id = ui.chosen_case()
typed = st.text_input("Case (transaction id)", value=case_id or "", placeholder="T0000012345")
if typed and typed != case_id:
    st.session_state["case_id"] = case_id = typed.strip()
if not case_id:
    st.info("Pick a case in the **Case queue** (or type a transaction id above).")
    st.page_link("pages/queue.py", label="Go to the case queue", icon="📥")
    st.stop()
st.query_params["case"] = case_id
try:
    detail = cases.case_detail(ws, case_id)
    scored = ui.scorer(ws).score_case(case_id)
except FraudlabError as exc:
    st.error(str(exc))
    st.stop()
case = detail.case
holder = cases.lock_holder(ws, case_id)
if holder and holder[0] != me:
    st.warning(f"🔒 {holder[0]} is working on this case until {holder[1]:%H:%M} UTC.")
elif case.get("status") in ("open", "escalated") and not holder:
    cases.take_case(ws, case_id, me)

c = st.columns(5)
c[0].metric("Score", f"{scored.score:.3f}")
c[1].metric("Amount", f"{case['amount']:,.2f}")
c[2].metric("Status", str(case.get("status", "—")))
c[3].metric("Scorer", scored.scorer, help=f"{scored.model_id or 'rules'} · {scored.latency_ms:.1f} ms")
c[4].metric("Customer", str(case.get("customer_id") or "—"))
st.text(cases.case_facts(case))  # data-derived: plain text, never markup
if scored.attempts:
    st.caption("Fallback: " + "; ".join(scored.attempts))

left, right = st.columns([1, 1])
with left:
    st.subheader("Why it was flagged")
    reasons = scored.reasons or ["nothing in this payment raised its risk above the usual"]
    st.markdown("\n".join(f"- {markdown_literal(text)}" for text in reasons))  # data-derived: escaped
    if scored.against:
        st.markdown("**What speaks against**")
        st.markdown("\n".join(f"- {markdown_literal(text)}" for text in scored.against))
with right:
    if scored.scorer == "rules":
        st.info("The rules answered (the model failed or was too slow), so there is no SHAP breakdown: "
                "the reasons are the rules that fired.")
    else:
        st.plotly_chart(waterfall_figure(scored.contributions, scored.base_value), width="stretch")
st.plotly_chart(history_timeline_figure(detail.history), width="stretch")

st.subheader("Decision")
newest = None if detail.decisions.empty else int(detail.decisions["decision_id"].iloc[0])
with st.form("decide"):
    decision = st.radio("Decision", cases.DECISIONS, horizontal=True)
    note = st.text_area("Note", placeholder="What you checked and why")
    if st.form_submit_button("Record decision", type="primary"):
        try:
            result = cases.decide(ws, case_id, decision, me, note, expected_previous=newest)
            if result.conflict:
                st.session_state["case_conflict"] = (f"{result.conflict['analyst']} decided "
                                                      f"'{result.conflict['decision']}' first; both are kept, "
                                                      f"yours ('{decision}') is now the newest.")
            st.toast(f"Recorded '{decision}' on {case_id}")
            st.rerun()
        except FraudlabError as exc:
            st.error(str(exc))
conflict = st.session_state.pop("case_conflict", None)
if conflict:
    st.warning(conflict)
if not detail.decisions.empty:
    st.dataframe(detail.decisions, width="stretch", hide_index=True)

for column, title, frame, empty in zip(
        st.columns(2), ("Linked entities", "Similar decided cases"), (detail.linked, detail.similar),
        ("No device, IP, card or e-mail on this transaction.", "No decided case with the same leading reason yet.")):
    with column:
        st.subheader(title)
        ui.table_or_note(frame, empty)
explained = scored.contributions if scored.scorer != "rules" else None
st.download_button("Download case report (HTML)", case_report_html(detail, explained, scored.base_value),
                   f"case_{case_id}.html", "text/html")
st.page_link("pages/queue.py", label="Back to the queue", icon="📥")
