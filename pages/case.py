"""Case detail: a customer's alerts grouped as one case, why each was flagged, the history, the decision (no
default), close reasons, per-alert overrides, reopening, an append-only comment thread, the customer view."""
import streamlit as st

from fraudlab import cases
from fraudlab.auth.actors import role_label
from fraudlab.auth.permissions import can
from fraudlab.case_report import case_report_html
from fraudlab.charts.cases import history_timeline_figure, waterfall_figure
from fraudlab.errors import FraudlabError
from fraudlab.text import markdown_literal
from ui import cases as ui
from ui.auth import me
from ui.state import get_workspace

ws = get_workspace()
actor = me()
st.title("Case detail")

case_id = ui.chosen_case()
typed = st.text_input("Case or transaction id", value=case_id or "", placeholder="T0000012345", key="case_input")
if typed and typed != case_id:
    st.session_state["case_id"] = case_id = typed.strip()
if not case_id:
    st.info("Pick a case in the **Case queue** (or type a case or transaction id above).")
    st.page_link("pages/queue.py", label="Go to the case queue", icon=":material/inbox:")
    st.stop()
st.query_params["case"] = case_id
try:
    detail = cases.case_detail(ws, case_id)
except FraudlabError as exc:
    st.error(str(exc))
    st.stop()
case = detail.case
case_id = str(case["case_id"])
holder = cases.lock_holder(ws, case_id)
if holder and holder[0] != actor.name:
    st.warning(f"Locked: {markdown_literal(holder[0])} is working on this case until {holder[1]:%H:%M} UTC.")
elif case.get("status") in ("open", "escalated") and not holder and can(actor, "take_case"):
    cases.take_case(ws, case_id, actor)

alerts = detail.alerts
alert_ids = alerts["alert_id"].tolist() if len(alerts) else [case_id]
explained_id = st.selectbox("Alert explained below", alert_ids, key=f"explain_{case_id}",
                            format_func=lambda a: ui.alert_label(alerts, a)) if len(alert_ids) > 1 else alert_ids[0]
try:
    scored = ui.scorer(ws).score_case(explained_id)
except FraudlabError as exc:
    st.error(str(exc))
    st.stop()

c = st.columns(5)
c[0].metric("Score", f"{scored.score:.3f}", help="The model's chance of fraud for the alert explained below (0-1)")
c[1].metric("Alerts", f"{int(case.get('alerts') or 1)}",
            help=f"{int(case.get('open_alerts') or 0)} still open" if len(alerts) else "not an alert")
c[2].metric("Amount", f"{float(case['amount']):,.2f}", help="Total of the case's alerts")
c[3].metric("Status", str(case.get("status") or "not an alert"))
c[4].metric("Age", ui.age_text(case), help=f"SLA: {cases.SLA_HOURS} hours from the first alert")
st.text(cases.case_facts(case))  # data-derived: plain text, never markup
if scored.attempts:
    st.caption("Fallback: " + markdown_literal("; ".join(scored.attempts)))
if isinstance(case.get("customer_id"), str):
    st.page_link("pages/customer.py", label=f"Customer view: everything about {case['customer_id']}", icon=":material/person:",
                 query_params={"customer": case["customer_id"]})

if len(alerts) > 1:
    st.subheader(f"The case's {len(alerts)} alerts")
    st.dataframe(ui.readable(ui.alerts_table(alerts)), width="stretch", hide_index=True)

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
        st.caption("How each feature moved this alert's score from the model's average, in log-odds: red raises "
                   "the risk, green lowers it.")
st.plotly_chart(history_timeline_figure(detail.history), width="stretch")

st.subheader("Decision")
newest = None if detail.decisions.empty else int(detail.decisions["decision_id"].iloc[0])
if can(actor, "decide"):
    ui.decision_form(ws, case_id, explained_id, len(alerts), newest, actor)
else:
    st.info(f"You are logged in as {role_label(actor.role)}: you can read cases and comment; analysts and "
            "reviewers decide them.")
for row in detail.decisions.itertuples():  # data-derived notes: plain text, never markup
    reason = f" ({row.close_reason})" if isinstance(row.close_reason, str) else ""
    note = f": {row.note}" if isinstance(row.note, str) and row.note else ""
    st.text(f"{row.decided_at:%Y-%m-%d %H:%M} · {row.analyst} · {row.decision}{reason} · "
            f"{row.alerts} alert{'s' if row.alerts != 1 else ''}{note}")
ui.comment_thread(ws, case_id, detail.comments, actor)

for column, title, frame, empty in zip(
        st.columns(2), ("Linked entities", "Similar decided cases"), (detail.linked, detail.similar),
        ("No device, IP, card or e-mail on this payment.", "No decided case with the same leading reason yet.")):
    with column:
        st.subheader(title)
        ui.table_or_note(ui.readable(frame), empty)
explained = scored.contributions if scored.scorer != "rules" else None
st.download_button("Download case report (HTML)", case_report_html(detail, explained, scored.base_value),
                   f"case_{case_id}.html", "text/html", key="case_report")
st.page_link("pages/queue.py", label="Back to the queue", icon=":material/inbox:")
