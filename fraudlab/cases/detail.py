"""One case: its state, the customer's history, linked entities and similar decided cases."""
from __future__ import annotations

import json

import pandas as pd

from fraudlab.cases.build import LINK_KINDS, CaseDetail
from fraudlab.cases.decisions import decision_history
from fraudlab.cases.queue import STATE_SQL
from fraudlab.errors import FraudlabError
from fraudlab.privacy import mask_cards
from fraudlab.workspace import Workspace, utcnow


def case_detail(ws: Workspace, case_id: str, history_rows: int = 200) -> CaseDetail:
    """The case with its state, the customer's history, linked entities, similar decided cases and decisions."""
    frame = ws.df(f"SELECT * FROM ({STATE_SQL}) q WHERE case_id = $id", {"id": case_id, "now": utcnow()})
    if frame.empty:
        tx = ws.df("SELECT t.*, s.score, s.scorer, s.model_id, s.reasons FROM transactions t "
                   "LEFT JOIN scores s USING (transaction_id) WHERE t.transaction_id = ?", [case_id])
        if tx.empty:
            raise FraudlabError(f"no transaction {case_id!r} in this workspace")
        frame = tx.rename(columns={"transaction_id": "case_id"}).assign(status="not an alert")
    case = frame.iloc[0]
    reasons = pd.DataFrame(json.loads(case["reasons"])) if isinstance(case.get("reasons"), str) else pd.DataFrame()
    return CaseDetail(case, customer_history(ws, case, history_rows), linked_entities(ws, case),
                      similar_cases(ws, case), decision_history(ws, case_id), reasons)


def customer_history(ws: Workspace, case: pd.Series, rows: int = 200) -> pd.DataFrame:
    """The customer's transactions around the case, with first-seen device / country flags and scores."""
    if not isinstance(case.get("customer_id"), str) or not ws.has_table("case_history"):
        return pd.DataFrame()
    return ws.df("""SELECT *, transaction_id = $id AS is_case FROM case_history WHERE customer_id = $cust
                    ORDER BY abs(epoch(ts) - epoch($ts::TIMESTAMP)) LIMIT $n""",
                 {"id": case["case_id"], "cust": case["customer_id"], "ts": case["ts"], "n": rows}
                 ).sort_values("ts", ignore_index=True)




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
    decided = ws.df("""SELECT c.device_id, c.ip, c.card_id, c.email FROM cases c
                       JOIN (SELECT case_id, arg_max(decision, decision_id) AS decision FROM decisions GROUP BY 1) d
                       USING (case_id) WHERE d.decision = 'fraud'""")
    column = {v: k for k, v in LINK_KINDS.items()}
    found["decided_fraud"] = [int((decided[column[k]] == v).sum()) for k, v in zip(found["kind"], found["value"])]
    cards = found["kind"] == "card"
    found.loc[cards, "value"] = mask_cards(found.loc[cards, "value"])
    return found.sort_values("other_customers", ascending=False, ignore_index=True)


def similar_cases(ws: Workspace, case: pd.Series, n: int = 5) -> pd.DataFrame:
    """Decided cases with the same leading reason and the closest score, and how they were decided."""
    return ws.df("""SELECT c.case_id, c.ts, c.amount, c.score, c.top_reason, d.decision, d.analyst, d.decided_at
                    FROM cases c JOIN (SELECT case_id, arg_max(decision, decision_id) AS decision,
                                              arg_max(analyst, decision_id) AS analyst, max(decided_at) AS decided_at
                                       FROM decisions GROUP BY case_id) d USING (case_id)
                    WHERE c.case_id <> $id AND (c.reason_family = $family OR $family IS NULL)
                    ORDER BY abs(c.score - $score) LIMIT $n""",
                 {"id": case["case_id"], "family": case.get("reason_family"), "score": float(case.get("score") or 0),
                  "n": n})


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
