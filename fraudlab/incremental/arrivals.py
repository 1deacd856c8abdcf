"""Late events: a loaded row older than the newest row its customer already had is late; beyond a horizon, flagged.

Every row of a load that arrives after later rows of the same customer (rows without a customer: after the newest
row of the workspace) gets a row in `arrivals` (transaction_id, ingest_id, arrived_at, late_by_seconds, status).
Status `late` when it is late by up to the horizon (default 24 h, `FRAUDLAB_LATE_HORIZON_HOURS`), `beyond_horizon`
beyond it. Either way the features and scores of the rows it changes are repaired by the incremental pipeline, so the
workspace equals a full rebuild; rows beyond the horizon are reported in the load's notes and its audit row (the
history they rewrite is older than the team expects to change). A row's arrival time is its load's
`ingests.started_at`; on-time rows need no `arrivals` row.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from fraudlab.auth.actors import SYSTEM, Actor
from fraudlab.workspace import Workspace, utcnow

LATE = "late"
BEYOND = "beyond_horizon"


@dataclass(frozen=True)
class ArrivalReport:
    """How many rows of one load arrived late, and how many beyond the lateness horizon."""

    ingest_id: int
    rows: int
    late: int
    beyond: int
    max_late_seconds: float
    horizon_hours: float

    @property
    def message(self) -> str:
        if not (self.late or self.beyond):
            return f"{self.rows:,} rows, none late"
        text = (f"{self.late:,} late row(s) (up to {self.horizon_hours:g} h behind their customer's newest row) "
                f"repaired")
        if self.beyond:
            text += (f"; {self.beyond:,} row(s) BEYOND the {self.horizon_hours:g} h lateness horizon (up to "
                     f"{self.max_late_seconds / 3600:,.1f} h late) loaded and marked '{BEYOND}': "
                     f"features and scores of the history they change were repaired too")
        return text


def record_arrivals(ws: Workspace, ingest_id: int, horizon_hours: float, who: Actor = SYSTEM) -> ArrivalReport:
    """Mark the late rows of one load in `arrivals` (one write, audited when any are late); returns the counts."""
    horizon_s = float(horizon_hours) * 3_600
    with ws.write(bump=False) as cur:
        # only rows after the load's earliest can make one of its rows late: scans skip the older row groups
        floor = cur.execute("SELECT min(ts) FROM transactions WHERE ingest_id = $id", {"id": ingest_id}).fetchall()[0][0]
        cur.execute("""
            CREATE OR REPLACE TEMP TABLE _late AS
            WITH fresh AS (SELECT transaction_id, customer_id, ts FROM transactions WHERE ingest_id = $id),
                 later AS (SELECT customer_id, ts FROM transactions
                           WHERE ts > $floor AND ingest_id IS DISTINCT FROM $id),
                 prior AS (SELECT customer_id, max(ts) AS newest FROM later
                           WHERE customer_id IN (SELECT customer_id FROM fresh) GROUP BY 1),
                 anyone AS (SELECT max(ts) AS newest FROM later)
            SELECT f.transaction_id, epoch(coalesce(p.newest, CASE WHEN f.customer_id IS NULL THEN a.newest END))
                                     - epoch(f.ts) AS late_by
            FROM fresh f LEFT JOIN prior p USING (customer_id) CROSS JOIN anyone a""",
                    {"id": ingest_id, "floor": floor})
        cur.execute("""INSERT INTO arrivals SELECT transaction_id, $id, $now, late_by,
                              CASE WHEN late_by > $h THEN $beyond ELSE $late END
                       FROM _late WHERE late_by > 0""",
                    {"id": ingest_id, "now": utcnow(), "h": horizon_s, "beyond": BEYOND, "late": LATE})
        rows, late, beyond, worst = cur.execute(
            "SELECT count(*), count(*) FILTER (late_by > 0 AND late_by <= $h), count(*) FILTER (late_by > $h), "
            "coalesce(max(late_by), 0) FROM _late", {"h": horizon_s}).fetchone()
        cur.execute("DROP TABLE _late")
    report = ArrivalReport(ingest_id, int(rows), int(late), int(beyond), float(max(worst, 0.0)), float(horizon_hours))
    if report.late or report.beyond:
        with ws.write("late_rows", who, {"ingest_id": ingest_id, "late": report.late, "beyond_horizon": report.beyond,
                                         "horizon_hours": report.horizon_hours,
                                         "max_late_hours": round(report.max_late_seconds / 3600, 3)}):
            pass
    return report


def record_live_arrivals(ws: Workspace, ids: list[str], horizon_hours: float) -> int:
    """Mark live (API) events stored after later rows of their customer in `arrivals`, as a load's late rows are
    (no ingest id); returns how many. Events without a customer are repaired but not marked."""
    with ws.write(bump=False) as cur:
        cur.execute("""
            INSERT INTO arrivals
            WITH fresh AS (SELECT transaction_id, customer_id, ts FROM transactions
                           WHERE transaction_id IN (SELECT unnest($ids))),
                 prior AS (SELECT customer_id, max(ts) AS newest FROM transactions
                           WHERE customer_id IN (SELECT customer_id FROM fresh)
                             AND transaction_id NOT IN (SELECT unnest($ids)) GROUP BY 1)
            SELECT f.transaction_id, NULL, $now, epoch(p.newest) - epoch(f.ts),
                   CASE WHEN epoch(p.newest) - epoch(f.ts) > $h THEN $beyond ELSE $late END
            FROM fresh f JOIN prior p USING (customer_id) WHERE p.newest > f.ts""",
                    {"ids": list(ids), "now": utcnow(), "h": float(horizon_hours) * 3_600, "beyond": BEYOND,
                     "late": LATE})
        return int(cur.execute("SELECT count(*) FROM arrivals WHERE transaction_id IN (SELECT unnest($ids))",
                               {"ids": list(ids)}).fetchall()[0][0])


def late_share_by_day(ws: Workspace) -> pd.DataFrame:
    """Per event day: transactions, rows that arrived late, beyond the horizon, and the late share (0..1)."""
    return ws.df(f"""
        SELECT date_trunc('day', t.ts) AS day, count(*) AS transactions,
               count(a.transaction_id) FILTER (a.status = '{LATE}') AS late,
               count(a.transaction_id) FILTER (a.status = '{BEYOND}') AS beyond_horizon,
               count(a.transaction_id) / count(*) AS late_share
        FROM transactions t LEFT JOIN arrivals a USING (transaction_id) GROUP BY 1 ORDER BY 1""")
