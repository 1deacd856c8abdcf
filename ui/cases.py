"""Streamlit glue for the queue and case pages: cached scorer and queries, opening a case."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from fraudlab import cases
from fraudlab.auth.actors import Actor
from fraudlab.auth.permissions import can
from fraudlab.errors import FraudlabError
from fraudlab.names import plain_columns
from fraudlab.privacy import csv_safe, mask_frame
from fraudlab.registry import models_stamp
from fraudlab.scoring import Scorer
from fraudlab.workspace import Workspace
from ui.cache import resource
from ui.state import toast_after_rerun

QUEUE_SHOWN = ("case_id", "customer_id", "alerts", "open_alerts", "score", "expected_loss", "amount", "status",
               "assignee", "reason_family", "first_ts", "age_hours", "sla_breached", "card_id", "merchant_id",
               "country", "channel", "segment")
QUEUE_COLUMN_CONFIG = {
    "Score": st.column_config.ProgressColumn("Score", min_value=0.0, max_value=1.0, format="%.3f",
                                             help="The riskiest alert's model score (0-1)"),
    "Expected loss": st.column_config.NumberColumn("Expected loss", format="%,.2f",
                                                   help="Score x amount, added over the case's alerts"),
    "Amount": st.column_config.NumberColumn("Amount", format="%,.2f", help="Total of the case's alerts"),
    "Age (hours)": st.column_config.NumberColumn("Age (hours)", format="%.0f"),
    "First alert": st.column_config.DatetimeColumn("First alert", format="YYYY-MM-DD HH:mm"),
    "SLA breached": st.column_config.CheckboxColumn("SLA breached", help=f"Open longer than {cases.SLA_HOURS} h"),
}


def scorer(ws: Workspace) -> Scorer:
    """The fallback-chain scorer, loaded once per champion (decisions do not reload the models)."""
    return resource(Scorer, ws, key=models_stamp(ws))


def queue_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Queue rows as analysts read them: plain labels, masked cards, words for states, nothing shown as None/nan."""
    out = mask_frame(rows[[c for c in QUEUE_SHOWN if c in rows]])
    out = out.rename(columns={"first_ts": "First alert", "alerts": "Alerts", "open_alerts": "Open alerts"})
    return readable(out)


def readable(frame: pd.DataFrame) -> pd.DataFrame:
    """Plain column names and empty cells instead of None / nan (numbers stay numbers)."""
    out = plain_columns(frame)
    for col in out.columns:
        if out[col].dtype == object or str(out[col].dtype).startswith(("string", "str")):
            out[col] = out[col].astype(object).where(out[col].notna(), "")
        elif pd.api.types.is_datetime64_any_dtype(out[col]) and out[col].isna().any():
            out[col] = out[col].dt.strftime("%Y-%m-%d %H:%M").fillna("")
    return out


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """What a person downloads: the table as shown, formula-looking cells neutralised."""
    return csv_safe(frame).to_csv(index=False).encode("utf-8")


def bulk_decision_form(ws: Workspace, selected: list[str], rows: pd.DataFrame, me: Actor) -> None:
    """Decide the selected cases after a confirmation that lists them; the selection and note clear afterwards."""
    with st.form(f"bulk_{st.session_state.get('queue_round', 0)}", clear_on_submit=True):
        decision = st.radio("Decision for every selected case", ["fraud", "legitimate", "escalate"], index=None,
                            horizontal=True)
        reasons = [r for group in cases.CLOSE_REASONS.values() for r in group]
        reason = st.selectbox("Close reason", reasons, index=None, placeholder="optional; must fit the decision")
        note = st.text_input("Note (e.g. 'card-testing burst')")
        if st.form_submit_button("Review and confirm…"):
            if decision is None:
                st.warning("Choose a decision first: nothing is preselected.")
            else:
                st.session_state["bulk_pending"] = {"cases": list(selected), "decision": decision, "reason": reason,
                                                    "note": note}
    pending = st.session_state.get("bulk_pending")
    if pending:
        _confirm_bulk(ws, pending, rows, me)


@st.dialog("Confirm the decision")
def _confirm_bulk(ws: Workspace, pending: dict, rows: pd.DataFrame, me: Actor) -> None:
    chosen = rows[rows["case_id"].isin(pending["cases"])]
    st.write(f"Record **{pending['decision']}** on these {len(chosen)} cases "
             f"({int(chosen['alerts'].sum())} alerts)?")
    st.dataframe(readable(chosen[["case_id", "customer_id", "alerts", "score", "amount"]]), hide_index=True)
    ok, cancel = st.columns(2)
    if ok.button("Confirm", type="primary", key="bulk_confirm"):
        try:
            done = cases.decide_many(ws, pending["cases"], pending["decision"], me, pending["note"],
                                     close_reason=pending["reason"])
        except FraudlabError as exc:
            st.error(str(exc))
            return
        st.session_state.pop("bulk_pending", None)
        st.session_state["queue_round"] = st.session_state.get("queue_round", 0) + 1
        toast_after_rerun(f"Recorded '{pending['decision']}' on {len(done)} cases")
        st.rerun()
    if cancel.button("Cancel", key="bulk_cancel"):
        st.session_state.pop("bulk_pending", None)
        st.rerun()


def open_case(case_id: str) -> None:
    """Go to the case page for this case."""
    st.session_state["case_id"] = case_id
    st.switch_page("pages/case.py")


def chosen_case() -> str | None:
    """The case asked for by ?case= or chosen on another page."""
    from_url = st.query_params.get("case")
    if from_url:
        st.session_state["case_id"] = from_url
    return st.session_state.get("case_id")


def table_or_note(frame: pd.DataFrame, empty: str) -> None:
    """A table, or a short note saying why there is nothing to show."""
    if frame.empty:
        st.caption(empty)
    else:
        st.dataframe(frame, width="stretch", hide_index=True)


def alert_label(alerts: pd.DataFrame, alert_id: str) -> str:
    """How an alert reads in the picker: id, time, amount, score, state."""
    row = alerts.set_index("alert_id").loc[alert_id]
    return f"{alert_id} · {row['ts']:%Y-%m-%d %H:%M} · {row['amount']:,.2f} · score {row['score']:.3f} · {row['status']}"


def alerts_table(alerts: pd.DataFrame) -> pd.DataFrame:
    """A case's alerts as shown: the columns an analyst compares, cards masked."""
    cols = ["alert_id", "ts", "amount", "score", "status", "decided_by", "close_reason", "merchant_id", "category",
            "channel", "country", "card_id"]
    return mask_frame(alerts[[c for c in cols if c in alerts]]).rename(columns={"alert_id": "Alert"})


def age_text(case: pd.Series) -> str:
    """The case's age in hours or days, with 'over SLA' when it is still open past the SLA."""
    hours = case.get("age_hours")
    if hours is None or hours != hours:
        return "—"
    text = f"{hours:.0f} h" if hours < 48 else f"{hours / 24:.0f} days"
    if case.get("status") in ("open", "escalated") and hours > cases.SLA_HOURS:
        text += " (over SLA)"
    return text


def decision_form(ws: Workspace, case_id: str, alert_id: str, n_alerts: int, newest: int | None, me: Actor) -> None:
    """Decide the whole case or only the alert explained above; no decision is preselected; the form clears."""
    with st.form(f"decide_{case_id}", clear_on_submit=True):
        choices = [d for d in cases.DECISIONS if d != "reopen" or can(me, "reopen")]
        decision = st.radio("Decision", choices, index=None, horizontal=True,
                            help="reopen needs a reason in the note")
        reasons = [r for group in cases.CLOSE_REASONS.values() for r in group]
        reason = st.selectbox("Close reason", reasons, index=None, placeholder="optional; must fit the decision")
        scopes = ["case"] + (["alert"] if n_alerts > 1 else [])
        scope = st.radio("Apply to", scopes, horizontal=True, format_func=lambda s: {
            "case": f"the whole case ({max(n_alerts, 1)} alert{'s' if n_alerts != 1 else ''})",
            "alert": f"only alert {alert_id} (override inside the case)"}[s])
        note = st.text_area("Note", placeholder="What you checked and why")
        if st.form_submit_button("Record decision", type="primary"):
            if decision is None:
                st.warning("Choose a decision first: nothing is preselected.")
                return
            try:
                result = cases.decide(ws, case_id, decision, me, note, expected_previous=newest,
                                      close_reason=reason, alerts=[alert_id] if scope == "alert" else None)
            except FraudlabError as exc:
                st.error(str(exc))
                return
            if result.conflict:
                st.session_state["case_conflict"] = (f"{result.conflict['analyst']} decided "
                                                      f"'{result.conflict['decision']}' first; both are kept, "
                                                      f"yours ('{decision}') is now the newest.")
            toast_after_rerun(f"Recorded '{decision}' on {case_id}")
            st.rerun()
    conflict = st.session_state.pop("case_conflict", None)
    if conflict:
        st.warning(conflict)


def comment_thread(ws: Workspace, case_id: str, comments: pd.DataFrame, me: Actor) -> None:
    """The case's comments, oldest first, and a box to add one (comments are never edited)."""
    st.subheader("Comments")
    for row in comments.itertuples():
        st.text(f"{row.created_at:%Y-%m-%d %H:%M} · {row.author}: {row.body}")  # data-derived: plain text
    if comments.empty:
        st.caption("No comment yet.")
    with st.form(f"comment_{case_id}", clear_on_submit=True):
        body = st.text_area("Add a comment", placeholder="Called the customer; waiting for the chargeback form")
        if st.form_submit_button("Add comment"):
            try:
                cases.add_comment(ws, case_id, me, body)
                st.rerun()
            except FraudlabError as exc:
                st.error(str(exc))
