"""The case queue: filters, ranking, paging, the alert budget."""
from __future__ import annotations

import pandas as pd

from fraudlab.cases.build import PAGE_SIZE, SLA_HOURS, QueueFilter
from fraudlab.workspace import Workspace, utcnow

STATE_SQL = """
WITH newest AS (
    SELECT case_id, arg_max(decision, decision_id) AS decision, arg_max(analyst, decision_id) AS decided_by,
           max(decided_at) AS decided_at
    FROM decisions GROUP BY case_id
)
SELECT c.*, CASE WHEN n.decision IS NULL THEN 'open' WHEN n.decision = 'escalate' THEN 'escalated'
                 ELSE n.decision END AS status,
       n.decided_by, n.decided_at, a.assignee, a.locked_by, a.locked_until,
       (epoch($now) - epoch(c.raised_at)) / 3600 AS age_hours
FROM cases c LEFT JOIN newest n USING (case_id) LEFT JOIN case_assignments a USING (case_id)
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


SORTS = {"score": "score DESC", "expected_loss": "expected_loss DESC", "age": "ts ASC", "amount": "amount DESC"}


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

    stats = ws.df("""SELECT count(*) AS cases, count(DISTINCT CAST(ts AS DATE)) AS days,
                            max(CAST(ts AS DATE)) AS last_day FROM cases""").iloc[0]
    current = champion(ws)
    budget = current.alert_budget_per_day if current else None
    days = max(int(stats["days"] or 0), 1)
    return {"cases": int(stats["cases"]), "per_day": int(stats["cases"]) / days, "budget_per_day": budget,
            "threshold": float(ws.scalar("SELECT value FROM case_meta WHERE key = 'threshold'") or 0.5)}
