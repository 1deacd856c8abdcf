"""The case queue: filters, ranking, paging, the alert budget."""
from __future__ import annotations

import pandas as pd

from fraudlab.cases.build import PAGE_SIZE, SLA_HOURS, QueueFilter
from fraudlab.workspace import Workspace, utcnow

# The state of each alert is the newest decision that covered it ('reopen' makes it open again); a case is open
# while any alert is, escalated while any is, else fraud if any alert is fraud, else legitimate.
ALERT_STATE_SQL = """
WITH covered AS (
    SELECT da.alert_id, arg_max(d.decision, d.decision_id) AS decision, arg_max(d.analyst, d.decision_id) AS decided_by,
           max(d.decided_at) AS decided_at, arg_max(d.close_reason, d.decision_id) AS close_reason
    FROM decision_alerts da JOIN decisions d USING (decision_id) GROUP BY da.alert_id
)
SELECT a.*, CASE WHEN c.decision IS NULL OR c.decision = 'reopen' THEN 'open' WHEN c.decision = 'escalate'
                 THEN 'escalated' ELSE c.decision END AS status,
       c.decided_by, c.decided_at, c.close_reason
FROM alerts a LEFT JOIN covered c USING (alert_id)
"""

STATE_SQL = f"""
WITH alert_state AS ({ALERT_STATE_SQL}),
case_state AS (
    SELECT case_id, count(*) FILTER (status = 'open') AS open_alerts, bool_or(status = 'escalated') AS escalated,
           bool_or(status = 'fraud') AS fraud, arg_max(decided_by, decided_at) AS decided_by,
           max(decided_at) AS decided_at, arg_max(close_reason, decided_at) AS close_reason
    FROM alert_state GROUP BY case_id
)
SELECT c.*, CASE WHEN s.open_alerts > 0 THEN 'open' WHEN s.escalated THEN 'escalated' WHEN s.fraud THEN 'fraud'
                 ELSE 'legitimate' END AS status,
       s.open_alerts, s.decided_by, s.decided_at, s.close_reason, a.assignee, a.locked_by, a.locked_until,
       (epoch($now) - epoch(c.raised_at)) / 3600 AS age_hours
FROM cases c JOIN case_state s USING (case_id) LEFT JOIN case_assignments a USING (case_id)
"""


def where_of(f: QueueFilter) -> tuple[str, dict]:
    clauses, params = [], {}
    simple = (("ts >= $start", "start", f.start), ("ts <= $end", "end", f.end),
              ("score >= $min_score", "min_score", f.min_score), ("score <= $max_score", "max_score", f.max_score),
              ("amount >= $min_amount", "min_amount", f.min_amount),
              ("amount <= $max_amount", "max_amount", f.max_amount), ("assignee = $assignee", "assignee", f.assignee))
    for clause, name, value in simple:
        if value is not None:
            clauses.append(clause)
            params[name] = value
    lists = (("status", "statuses", f.statuses), ("reason_family", "families", f.reason_families),
             ("segment", "segments", f.segments), ("country", "countries", f.countries),
             ("channel", "channels", f.channels))
    for column, name, values in lists:
        if values:
            clauses.append(f"list_contains(${name}, {column})")
            params[name] = list(values)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


SORTS = {"score": "score DESC", "expected_loss": "expected_loss DESC", "alerts": "alerts DESC",
         "age": "raised_at ASC", "amount": "amount DESC"}


def queue(ws: Workspace, filters: QueueFilter = QueueFilter(), sort: str = "score", limit: int = PAGE_SIZE,
          offset: int = 0) -> tuple[pd.DataFrame, int]:
    """One page of the case queue (ranked, filtered) and the total number of matching cases."""
    where, params = where_of(filters)
    params.update(now=utcnow(), limit=int(limit), offset=int(offset))
    order = SORTS.get(sort, SORTS["score"])
    base = f"SELECT * FROM ({STATE_SQL}) q{where}"
    page = ws.df(f"""SELECT *, age_hours > {SLA_HOURS} AND status IN ('open', 'escalated') AS sla_breached
                     FROM ({base}) ORDER BY {order}, case_id LIMIT $limit OFFSET $offset""", params)
    total = int(ws.scalar(f"SELECT count(*) FROM ({base})", {k: v for k, v in params.items()
                                                              if k not in ("limit", "offset")}))
    return page, total


def assignment_stamp(ws: Workspace) -> str:
    """Changes whenever a case is taken, locked or assigned (locks do not bump the workspace version)."""
    row = ws.df("SELECT count(*) AS n, max(assigned_at) AS a, max(locked_until) AS l FROM case_assignments").iloc[0]
    return f"{row['n']}|{row['a']}|{row['l']}"


def queue_options(ws: Workspace) -> dict[str, list]:
    """Values the queue filters can offer (countries, channels, reason families, segments, assignees)."""
    def values(col: str, table: str = "cases") -> list:
        return [v for v in ws.df(f"SELECT DISTINCT {col} AS v FROM {table} WHERE {col} IS NOT NULL ORDER BY 1")["v"]]
    return {"countries": values("country"), "channels": values("channel"), "reason_families": values("reason_family"),
            "segments": values("segment"), "assignees": values("assignee", "case_assignments")}


def alert_budget(ws: Workspace) -> dict:
    """Alerts per day in the queue against the champion's daily alert budget."""
    from fraudlab.registry import champion

    stats = ws.df("""SELECT count(*) AS alerts, count(DISTINCT case_id) AS cases,
                            count(DISTINCT CAST(ts AS DATE)) AS days FROM alerts""").iloc[0]
    current = champion(ws)
    budget = current.alert_budget_per_day if current else None
    days = max(int(stats["days"] or 0), 1)
    return {"cases": int(stats["cases"]), "alerts": int(stats["alerts"]), "per_day": int(stats["alerts"]) / days,
            "budget_per_day": budget,
            "threshold": float(ws.scalar("SELECT value FROM case_meta WHERE key = 'threshold'") or 0.5)}


def case_alerts(ws: Workspace, case_id: str) -> pd.DataFrame:
    """The alerts of one case, riskiest first, each with its own state (decided inside the case or not)."""
    return ws.df(f"""SELECT alert_id, ts, amount, score, status, decided_by, decided_at, close_reason, top_reason,
                            merchant_id, category, channel, country, card_id, device_id, ip
                     FROM ({ALERT_STATE_SQL}) WHERE case_id = $id ORDER BY score DESC, ts""", {"id": case_id})


def case_of(ws: Workspace, subject_id: str) -> str | None:
    """The case a case id or an alert's transaction id belongs to (None: not an alert)."""
    return ws.scalar("SELECT case_id FROM alerts WHERE alert_id = $id OR case_id = $id ORDER BY alert_id <> $id "
                     "LIMIT 1", {"id": subject_id})


def open_alert_ids(ws: Workspace, customer_ids: list[str]) -> list[str]:
    """The undecided alerts of these customers (what deciding "their open cases" covers, e.g. a ring's)."""
    return ws.df(f"""SELECT alert_id FROM ({ALERT_STATE_SQL}) WHERE status = 'open'
                     AND list_contains($customers, customer_id) ORDER BY alert_id""",
                 {"customers": list(customer_ids)})["alert_id"].tolist()
