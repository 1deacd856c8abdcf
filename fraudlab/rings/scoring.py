"""Ring facts from the workspace and the score parts that rank rings."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from fraudlab.labels import resolved_sql
from fraudlab.rings.records import DEFAULT_NEW_ACCOUNT_DAYS
from fraudlab.workspace import Workspace

RING_FACTS_SQL = f"""
WITH tx AS (
    SELECT m.ring, t.customer_id, t.transaction_id, t.ts, t.amount
    FROM transactions t JOIN _rg_members m USING (customer_id)
), lab AS (
    SELECT l.transaction_id, l.label AS is_fraud FROM ({resolved_sql(None)}) l SEMI JOIN tx USING (transaction_id)
), sc AS (
    SELECT s.transaction_id, max(s.score) AS score FROM scores s SEMI JOIN tx USING (transaction_id)
    GROUP BY s.transaction_id
), per_customer AS (
    SELECT tx.ring, tx.customer_id, count(*) AS n, sum(tx.amount) AS amount,
           bool_or(COALESCE(lab.is_fraud, FALSE)) AS fraud, max(sc.score) AS max_score,
           min(tx.ts) AS first_ts
    FROM tx LEFT JOIN lab USING (transaction_id) LEFT JOIN sc USING (transaction_id)
    GROUP BY tx.ring, tx.customer_id
), spread AS (
    SELECT ring, quantile_cont(epoch(ts), 0.9) - quantile_cont(epoch(ts), 0.1) AS spread_s,
           (max(epoch(ts)) - min(epoch(ts))) / 86400.0 AS active_days,
           median(epoch(ts)) AS mid_s
    FROM tx GROUP BY ring
)
SELECT p.ring, count(*) AS size, sum(p.n) AS transactions, sum(p.amount) AS amount,
       count(*) FILTER (p.fraud) AS fraud_members, avg(p.max_score) AS score_mean, max(p.max_score) AS score_max,
       any_value(s.spread_s) AS spread_s, any_value(s.active_days) AS active_days,
       count(*) FILTER (epoch(p.first_ts) > ? AND s.mid_s - epoch(p.first_ts) < ?) AS new_accounts
FROM per_customer p JOIN spread s USING (ring)
GROUP BY p.ring
"""


def _global_time(ws: Workspace) -> tuple[float, float]:
    """(p90 - p10 spread in seconds, first transaction epoch) over all transactions."""
    row = ws.arrow("SELECT quantile_cont(epoch(ts), 0.9) - quantile_cont(epoch(ts), 0.1), min(epoch(ts)) "
                   "FROM transactions").to_pylist()[0]
    values = list(row.values())
    return float(values[0] or 0.0), float(values[1] or 0.0)


def ring_facts(ws: Workspace, members: pd.DataFrame,
               new_account_days: float = DEFAULT_NEW_ACCOUNT_DAYS) -> pd.DataFrame:
    """Per ring (members: ring, customer_id): size, transactions, amount, fraud members, scores, timing."""
    spread_all, first_epoch = _global_time(ws)
    window_s = float(new_account_days) * 86400.0
    cur = ws.cursor()
    try:
        cur.register("_rg_members", pa.Table.from_pandas(members[["ring", "customer_id"]], preserve_index=False))
        facts = cur.sql(RING_FACTS_SQL, params=[first_epoch + window_s, window_s]).to_arrow_table().to_pandas()
    finally:
        cur.close()
    facts["time_concentration"] = 1.0 - np.clip(facts["spread_s"] / spread_all, 0.0, 1.0) if spread_all else 0.0
    return facts.drop(columns="spread_s")


def score_parts(facts: pd.DataFrame) -> pd.DataFrame:
    """The score parts in [0, 1] from ring facts (NaN where a part cannot be measured, e.g. no scores)."""
    size = facts["size"].astype(float)
    parts = pd.DataFrame(index=facts.index)
    parts["part_size"] = np.clip(np.log2(size) / 4.0, 0.0, 1.0)                      # 2 → .25, 16+ → 1
    parts["part_shared"] = np.clip(facts["shared_identifiers"] / (2.0 * (size - 1).clip(lower=1)), 0.0, 1.0)
    parts["part_fraud"] = facts["fraud_members"] / size
    parts["part_model"] = facts["score_mean"].astype(float)
    amount = facts["amount"].astype(float)
    parts["part_amount"] = amount.rank(pct=True) if len(amount) > 1 else (amount > 0).astype(float)
    parts["part_time"] = facts["time_concentration"].astype(float)
    parts["part_new_accounts"] = facts["new_accounts"] / size
    return parts


def combine_parts(parts: pd.DataFrame, weights: dict[str, float]) -> pd.Series:
    """Weighted mean of the available parts (a NaN part drops out with its weight)."""
    values = np.column_stack([parts[f"part_{k}"].to_numpy(dtype=float) for k in weights])
    w = np.array([float(weights[k]) for k in weights])
    present = ~np.isnan(values)
    total = (np.where(present, values, 0.0) * w).sum(axis=1)
    norm = (present * w).sum(axis=1)
    return pd.Series(np.where(norm > 0, total / np.where(norm > 0, norm, 1.0), 0.0), index=parts.index)
