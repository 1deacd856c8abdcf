"""One ring: its members, their transactions and the case ids to decide."""
from __future__ import annotations

from typing import Sequence

import pandas as pd
import pyarrow as pa

from fraudlab.labels import resolved_sql
from fraudlab.privacy import mask_cards
from fraudlab.rings.records import RingError
from fraudlab.workspace import Workspace


def members_arrow(customers: Sequence[str]) -> pa.Table:
    return pa.table({"customer_id": pa.array([str(c) for c in customers], type=pa.string())})


def ring_members(ws: Workspace, customers: Sequence[str]) -> pd.DataFrame:
    """One row per member: activity, labels, highest score and its transaction (the top case), last card (masked)."""
    cur = ws.cursor()
    try:
        cur.register("_rg_one", members_arrow(customers))
        table = cur.sql(f"""
            WITH tx AS (SELECT t.* FROM transactions t SEMI JOIN _rg_one USING (customer_id)),
            lab AS (SELECT transaction_id, label AS fraud FROM ({resolved_sql(None)})
                    SEMI JOIN tx USING (transaction_id)),
            sc AS (SELECT transaction_id, max(score) AS score FROM scores SEMI JOIN tx USING (transaction_id) GROUP BY 1)
            SELECT tx.customer_id, count(*) AS transactions, round(sum(tx.amount), 2) AS amount,
                   min(tx.ts)::TIMESTAMP AS first_seen, max(tx.ts)::TIMESTAMP AS last_seen,
                   count(*) FILTER (lab.fraud) AS fraud_labels, max(sc.score) AS max_score,
                   arg_max(tx.transaction_id, COALESCE(sc.score, -1)) AS top_case,
                   count(DISTINCT tx.card_id) AS cards, arg_max(tx.card_id, tx.ts) AS last_card,
                   count(DISTINCT tx.device_id) AS devices, count(DISTINCT tx.ip) AS ips
            FROM tx LEFT JOIN lab USING (transaction_id) LEFT JOIN sc USING (transaction_id)
            GROUP BY tx.customer_id ORDER BY max_score DESC NULLS LAST, fraud_labels DESC, tx.customer_id
        """).to_arrow_table()
    finally:
        cur.close()
    frame = table.to_pandas()
    frame["last_card"] = mask_cards(frame["last_card"])
    return frame


def ring_transactions(ws: Workspace, customers: Sequence[str], limit: int = 20_000) -> pd.DataFrame:
    """The members' transactions (newest first, at most `limit`), cards masked, with score and label."""
    cur = ws.cursor()
    try:
        cur.register("_rg_one", members_arrow(customers))
        table = cur.sql(f"""
            SELECT t.transaction_id, t.customer_id, t.ts::TIMESTAMP AS ts, t.amount, t.merchant_id, t.card_id,
                   t.device_id, t.ip, s.score, l.is_fraud
            FROM transactions t SEMI JOIN _rg_one USING (customer_id)
            LEFT JOIN (SELECT transaction_id, max(score) AS score FROM scores GROUP BY 1) s USING (transaction_id)
            LEFT JOIN (SELECT transaction_id, label AS is_fraud FROM ({resolved_sql(None)})) l
                USING (transaction_id)
            ORDER BY t.ts DESC LIMIT ?""", params=[int(limit)]).to_arrow_table()
    finally:
        cur.close()
    frame = table.to_pandas()
    frame["card_id"] = mask_cards(frame["card_id"])
    return frame


def ring_case_ids(ws: Workspace, customers: Sequence[str], scope: str = "cases") -> list[str]:
    """Transaction ids a ring decision applies to.

    scope "cases": the members' open cases (scored at or above the alert threshold, no decision yet);
    scope "all": every transaction of every member.
    """
    if scope not in ("cases", "all"):
        raise RingError(f"unknown scope {scope!r}: use 'cases' or 'all'")
    if scope == "cases":
        from fraudlab.cases import open_alert_ids

        return open_alert_ids(ws, list(customers))
    cur = ws.cursor()
    try:
        cur.register("_rg_one", members_arrow(customers))
        ids = cur.sql("SELECT transaction_id FROM transactions SEMI JOIN _rg_one USING (customer_id) "
                      "ORDER BY transaction_id").to_arrow_table().column(0).to_pylist()
    finally:
        cur.close()
    return [str(i) for i in ids]
