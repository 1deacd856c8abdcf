"""Every write to `labels`, and the one resolver of "the label of a transaction as known at time T".

Two clocks meet here. Event time is `transactions.ts`. Knowledge time is `labels.label_ts`, on the *data's* clock:
a label from the source file carries its own `label_ts` (none: known from the start); an analyst's decision is known
from the moment it is made, which on the data's clock is the newest transaction time in the workspace then
(`data_now`). So however old the transaction, the next training run, which resolves labels as of the data's latest
time, sees the decision. `recorded_at` keeps the wall clock of every write.

When several labels are known at the time asked, the one recorded last wins (an analyst's decision beats the source
label loaded before it; a chargeback file loaded after the decision beats the decision); recorded together, the
analyst's wins, then the one known last on the data's clock.
"""
from __future__ import annotations

from datetime import datetime
from typing import Sequence

import duckdb
import pandas as pd

from fraudlab.auth.actors import Actor
from fraudlab.auth.permissions import require
from fraudlab.workspace import Workspace, utcnow

SOURCES = ("data", "analyst")
_BEGINNING = "TIMESTAMP '1900-01-01'"


def resolved_sql(as_of_param: str | None = "$as_of", table: str = "labels") -> str:
    """SQL of (transaction_id, label, trusted, known_at): the label of each transaction known at `as_of`.

    `trusted` is false when an analyst's label is involved (the promotion guard holds those apart); `as_of_param`
    None means everything known now; `table` is `labels` or a temp table holding some of its rows.

    >>> "arg_max" in resolved_sql()
    True
    """
    known = "TRUE" if as_of_param is None else f"(label_ts IS NULL OR label_ts <= {as_of_param})"
    return f"""
        SELECT transaction_id,
               arg_max(is_fraud, (coalesce(recorded_at, {_BEGINNING}), CASE source WHEN 'analyst' THEN 1 ELSE 0 END,
                                  coalesce(label_ts, {_BEGINNING}))) AS label,
               bool_and(source = 'data') AS trusted,
               max(coalesce(label_ts, {_BEGINNING})) AS known_at
        FROM {table} WHERE {known} GROUP BY transaction_id"""


# the label rows of transactions with a fraud label: only they can resolve to fraud (a small share of all labels)
FRAUD_LABEL_ROWS_SQL = ("SELECT * FROM labels WHERE transaction_id IN "
                        "(SELECT transaction_id FROM labels WHERE is_fraud)")


def fraud_known_sql(table: str = "labels") -> str:
    """SQL of (transaction_id, known): when each transaction that is fraud by its current label became known as fraud.

    Used by point-in-time features: a fraud counts in a window only once it was known. `known` is NULL when the
    source gave no label time; the features then assume a label delay.
    """
    return f"""
        SELECT l.transaction_id, min(l.label_ts) AS known
        FROM {table} l JOIN ({resolved_sql(None, table)}) r USING (transaction_id)
        WHERE l.is_fraud AND r.label GROUP BY l.transaction_id"""


def data_now(cur: duckdb.DuckDBPyConnection) -> datetime | None:
    """The newest transaction time: "now" on the data's clock."""
    return cur.execute("SELECT max(ts) FROM transactions").fetchone()[0]


def insert_source_labels(cur: duckdb.DuckDBPyConnection, select_sql: str) -> int:
    """Inside a load's transaction: store the labels the source file carries (rows of transaction_id, is_fraud,
    label_ts); returns how many."""
    return int(cur.execute(f"""INSERT INTO labels (transaction_id, is_fraud, label_ts, source, recorded_at)
                               SELECT transaction_id, is_fraud, label_ts, 'data', $now FROM ({select_sql})
                               WHERE is_fraud IS NOT NULL""", {"now": utcnow()}).fetchone()[0])


def record_analyst_labels(cur: duckdb.DuckDBPyConnection, transaction_ids: Sequence[str], is_fraud: bool) -> None:
    """Inside a decision's transaction: the analyst's label for each transaction, known from now on."""
    if not transaction_ids:
        return
    cur.execute("""INSERT INTO labels (transaction_id, is_fraud, label_ts, source, recorded_at)
                   SELECT unnest($ids), $fraud, $known, 'analyst', $now""",
                {"ids": list(transaction_ids), "fraud": bool(is_fraud), "known": data_now(cur), "now": utcnow()})


def labels_as_of(ws: Workspace, as_of: datetime | None = None) -> pd.DataFrame:
    """Resolved labels (transaction_id, label, trusted, known_at) known at `as_of` (default: everything known now)."""
    if as_of is None:
        return ws.df(resolved_sql(None))
    return ws.df(resolved_sql(), {"as_of": as_of})


def label_maturity_days(ws: Workspace) -> float:
    """How long source labels take to arrive (95th percentile of label_ts - ts), capped to [0, 60] days."""
    days = ws.scalar("""SELECT quantile_cont(epoch(l.label_ts) - epoch(t.ts), 0.95) / 86400 FROM labels l
                        JOIN transactions t USING (transaction_id)
                        WHERE l.label_ts IS NOT NULL AND l.source = 'data'""")
    return float(min(max(days or 0.0, 0.0), 60.0))


def delete_all(ws: Workspace, who: Actor | None) -> int:
    """Forget every label (a test, or a workspace whose labels are known wrong); audited; returns how many."""
    require(ws, who, "clear_data")
    with ws.write("labels_deleted", who) as cur:
        return int(cur.execute("DELETE FROM labels").fetchone()[0])
