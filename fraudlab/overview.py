"""Workspace-level summary for the sidebar and the home page."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fraudlab.labels import resolved_sql
from fraudlab.workspace import Workspace

SUMMARY_SQL = f"""
SELECT count(*) AS rows, min(ts) AS first_ts, max(ts) AS last_ts,
       (SELECT avg(CASE WHEN label THEN 1.0 ELSE 0.0 END) FROM ({resolved_sql(None)})) AS fraud_rate,
       count(DISTINCT customer_id) AS customers
FROM transactions
"""


@dataclass(frozen=True)
class WorkspaceSummary:
    """Headline numbers about what the workspace holds."""

    rows: int
    first_ts: datetime | None
    last_ts: datetime | None
    fraud_rate: float | None
    customers: int
    last_ingest: str | None
    quarantined: int
    version: int


def workspace_summary(ws: Workspace) -> WorkspaceSummary:
    """Rows, date range, labelled fraud rate, last ingest and quarantine size."""
    row = ws.df(SUMMARY_SQL).iloc[0]
    last = ws.df("SELECT source, started_at FROM ingests WHERE status = 'ok' ORDER BY ingest_id DESC LIMIT 1")
    last_ingest = None if last.empty else f"{last.iloc[0]['source']} ({last.iloc[0]['started_at']:%Y-%m-%d %H:%M})"
    rate = row["fraud_rate"]
    return WorkspaceSummary(
        rows=int(row["rows"]),
        first_ts=None if row["rows"] == 0 else row["first_ts"].to_pydatetime(),
        last_ts=None if row["rows"] == 0 else row["last_ts"].to_pydatetime(),
        fraud_rate=None if rate != rate or rate is None else float(rate),
        customers=int(row["customers"]),
        last_ingest=last_ingest,
        quarantined=int(ws.scalar("SELECT count(*) FROM quarantine")),
        version=ws.version,
    )


DAILY_SQL = f"""
SELECT CAST(date_trunc('day', t.ts) AS DATE) AS day, count(*) AS transactions,
       count(*) FILTER (l.label) AS fraud, sum(t.amount) AS amount,
       coalesce(sum(t.amount) FILTER (l.label), 0) AS fraud_amount,
       count(*) FILTER (s.score >= $threshold) AS alerts
FROM transactions t LEFT JOIN scores s USING (transaction_id) LEFT JOIN ({resolved_sql(None)}) l USING (transaction_id)
GROUP BY 1 ORDER BY 1
"""


def daily_activity(ws: Workspace, threshold: float = 0.5):
    """Per-day transactions, labelled fraud (count, amount) and alerts at the threshold (aggregated in SQL)."""
    return ws.df(DAILY_SQL, {"threshold": threshold})
