"""One case: its state, the customer's history, linked entities and similar decided cases."""
from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd

from fraudlab.cases.build import CaseDetail
from fraudlab.cases.decisions import case_comments, decision_history
from fraudlab.cases.entities import LINK_KINDS
from fraudlab.cases.queue import ALERT_STATE_SQL, STATE_SQL, case_alerts, case_of
from fraudlab.errors import FraudlabError
from fraudlab.privacy import mask_cards
from fraudlab.workspace import Workspace, utcnow


def case_detail(ws: Workspace, case_id: str, history_rows: int = 200) -> CaseDetail:
    """The case (found by its id or any of its alerts) with its alerts, the customer's history, linked entities,
    similar decided cases, decisions and comments."""
    case = case_of(ws, case_id) or case_id
    frame = ws.df(f"SELECT * FROM ({STATE_SQL}) q WHERE case_id = $id", {"id": case, "now": utcnow()})
    if frame.empty:
        tx = ws.df("SELECT t.*, s.score, s.scorer, s.model_id, s.reasons FROM transactions t "
                   "LEFT JOIN scores s USING (transaction_id) WHERE t.transaction_id = ?", [case_id])
        if tx.empty:
            raise FraudlabError(f"no transaction {case_id!r} in this workspace")
        frame = tx.rename(columns={"transaction_id": "case_id"}).assign(status="not an alert", alerts=0,
                                                                       top_alert=case_id)
    row = frame.iloc[0]
    reasons = pd.DataFrame(json.loads(row["reasons"])) if isinstance(row.get("reasons"), str) else pd.DataFrame()
    alerts = case_alerts(ws, case)
    return CaseDetail(row, customer_history(ws, row, history_rows, set(alerts["alert_id"]) or {case}),
                      linked_entities(ws, row), similar_cases(ws, row), decision_history(ws, case), reasons, alerts,
                      case_comments(ws, case))


def customer_history(ws: Workspace, case: pd.Series, rows: int = 200, alert_ids: set[str] | None = None
                     ) -> pd.DataFrame:
    """The customer's transactions around the case, with first-seen device / country flags, scores, and which
    belong to this case."""
    if not isinstance(case.get("customer_id"), str) or not ws.has_table("case_history"):
        return pd.DataFrame()
    frame = ws.df("""SELECT * FROM case_history WHERE customer_id = $cust
                     ORDER BY abs(epoch(ts) - epoch($ts::TIMESTAMP)) LIMIT $n""",
                  {"cust": case["customer_id"], "ts": case["ts"], "n": rows}).sort_values("ts", ignore_index=True)
    frame["is_case"] = frame["transaction_id"].isin(alert_ids or {case["case_id"]})
    return frame


def linked_entities(ws: Workspace, case: pd.Series) -> pd.DataFrame:
    """Identifiers of the case shared with other customers, with their labelled and decided fraud."""
    keys = {LINK_KINDS[col]: case.get(col) for col in LINK_KINDS if isinstance(case.get(col), str)}
    if not keys or not ws.has_table("case_entities"):
        return pd.DataFrame(columns=["kind", "value", "other_customers", "transactions", "fraud", "decided_fraud"])
    found = ws.df("""SELECT kind, value, customers - 1 AS other_customers, transactions, fraud FROM case_entities
                     WHERE (kind = 'device' AND value = $device) OR (kind = 'IP address' AND value = $ip)
                        OR (kind = 'card' AND value = $card) OR (kind = 'email' AND value = $email)""",
                  {"device": keys.get("device"), "ip": keys.get("IP address"), "card": keys.get("card"),
                   "email": keys.get("email")})
    decided = ws.df(f"SELECT device_id, ip, card_id, email FROM ({ALERT_STATE_SQL}) WHERE status = 'fraud'")
    column = {v: k for k, v in LINK_KINDS.items()}
    found["decided_fraud"] = [int((decided[column[k]] == v).sum()) for k, v in zip(found["kind"], found["value"])]
    cards = found["kind"] == "card"
    found.loc[cards, "value"] = mask_cards(found.loc[cards, "value"])
    return found.sort_values("other_customers", ascending=False, ignore_index=True)


def similar_cases(ws: Workspace, case: pd.Series, n: int = 5) -> pd.DataFrame:
    """Decided cases with the same leading reason and the closest score, and how they were decided."""
    return ws.df(f"""SELECT case_id, customer_id, alerts, amount, score, top_reason, status AS decision, decided_by,
                            decided_at
                     FROM ({STATE_SQL}) q
                     WHERE status IN ('fraud', 'legitimate') AND case_id <> $id
                       AND (reason_family = $family OR $family IS NULL)
                     ORDER BY abs(score - $score) LIMIT $n""",
                 {"id": case["case_id"], "family": case.get("reason_family"), "score": float(case.get("score") or 0),
                  "n": n, "now": utcnow()})


def _present(value) -> bool:
    return value is not None and not (isinstance(value, float) and value != value) and str(value).strip() != ""


def case_facts(case: pd.Series) -> str:
    """One line of what is known about the payment, naming only the fields the data has (cards masked)."""
    from fraudlab.privacy import mask_card

    parts = [f"{case['ts']:%Y-%m-%d %H:%M:%S}"]
    if _present(case.get("card_id")):
        parts.append(f"card {mask_card(case.get('card_id'))}")
    if _present(case.get("merchant_id")):
        kinds = ", ".join(str(case.get(k)) for k in ("category", "channel") if _present(case.get(k)))
        parts.append(f"merchant {case.get('merchant_id')}" + (f" ({kinds})" if kinds else ""))
    for key, label in (("country", "country"), ("device_id", "device"), ("ip", "IP")):
        if _present(case.get(key)):
            parts.append(f"{label} {case.get(key)}")
    return " · ".join(parts)


@dataclass(frozen=True)
class CustomerView:
    """Everything about one customer an analyst needs at once."""

    customer_id: str
    cases: pd.DataFrame        # the customer's cases with their state
    alerts: pd.DataFrame       # every alert, with its state
    decisions: pd.DataFrame    # every decision on them, newest first
    linked: pd.DataFrame       # identifiers shared with other customers
    history: pd.DataFrame      # every payment (newest 1,000), for the timeline
    segment: str | None


def customer_view(ws: Workspace, customer_id: str) -> CustomerView:
    """One customer's cases, alerts, decisions, shared identifiers, segment and payments."""
    now = {"c": customer_id, "now": utcnow()}
    found = ws.df(f"SELECT * FROM ({STATE_SQL}) q WHERE customer_id = $c ORDER BY first_ts DESC", now)
    alerts = ws.df(f"""SELECT alert_id, case_id, ts, amount, score, status, decided_by, close_reason, top_reason
                       FROM ({ALERT_STATE_SQL}) WHERE customer_id = $c ORDER BY ts DESC""", {"c": customer_id})
    decisions = ws.df("""SELECT d.decision_id, d.case_id, d.analyst, d.decision, d.close_reason, d.note, d.decided_at,
                                count(*) AS alerts
                         FROM decisions d JOIN decision_alerts da USING (decision_id)
                         JOIN transactions t ON t.transaction_id = da.alert_id
                         WHERE t.customer_id = $c GROUP BY ALL ORDER BY d.decision_id DESC""", {"c": customer_id})
    history = ws.df("""SELECT t.transaction_id, t.ts, t.amount, t.merchant_id, t.category, t.channel, t.country,
                              s.score FROM transactions t LEFT JOIN scores s USING (transaction_id)
                       WHERE t.customer_id = $c ORDER BY t.ts DESC LIMIT 1000""", {"c": customer_id})
    history["is_case"] = history["transaction_id"].isin(set(alerts["alert_id"]))
    segment = ws.scalar("SELECT any_value(segment_name) FROM customer_segments WHERE customer_id = $c",
                        {"c": customer_id})
    return CustomerView(customer_id, found, alerts, decisions, _shared_identifiers(ws, customer_id),
                        history.sort_values("ts", ignore_index=True), segment)


def _shared_identifiers(ws: Workspace, customer_id: str) -> pd.DataFrame:
    """The customer's devices, IPs, cards and e-mails, with how many other customers used each."""
    cols = [c for c in LINK_KINDS if c in set(ws.columns("transactions"))]
    if not cols or not ws.has_table("case_entities"):
        return pd.DataFrame(columns=["kind", "value", "other_customers", "transactions", "fraud"])
    parts = " UNION ".join(f"SELECT DISTINCT '{LINK_KINDS[c]}' AS kind, {c} AS value FROM transactions "
                           f"WHERE customer_id = $c AND {c} IS NOT NULL" for c in cols)
    found = ws.df(f"""SELECT e.kind, e.value, e.customers - 1 AS other_customers, e.transactions, e.fraud
                      FROM case_entities e JOIN ({parts}) mine USING (kind, value)
                      ORDER BY other_customers DESC, transactions DESC""", {"c": customer_id})
    cards = found["kind"] == "card"
    found.loc[cards, "value"] = mask_cards(found.loc[cards, "value"])
    return found
