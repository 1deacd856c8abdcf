"""A live alert into the case queue without rebuilding it: one row in `alerts`, its case row recomputed.

Same rules as :func:`fraudlab.cases.build.refresh_cases`: the alert joins the customer's newest case when it comes
within the case window of that case's last alert, else it opens a case named after itself. When the queue was up to
date before, its fingerprint is moved on in the same transaction, so no page rebuilds the queue for it. An alert
older than the customer's newest alert (an event arriving late) may regroup later alerts: then the fingerprint is
left behind and the next refresh rebuilds the queue whole.
"""
from __future__ import annotations

import duckdb

from fraudlab.cases.build import CASE_WINDOW_HOURS, CASES_SELECT, reason_family, scores_fingerprint
from fraudlab.workspace import quote_ident


def _table_columns(cur: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    """Column names of a table (or [] when there is none), from an empty result: cheaper than the catalog views."""
    if not cur.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [table]).fetchall()[0][0]:
        return []
    return _result_columns(cur, f"SELECT * FROM {quote_ident(table)} LIMIT 0")


def _result_columns(cur: duckdb.DuckDBPyConnection, sql: str) -> list[str]:
    """Column names of a query's result (the empty result is fetched: DuckDB refuses new work on an open one)."""
    result = cur.execute(sql)
    names = [d[0] for d in result.description]
    result.fetchall()
    return names


def queue_state(cur: duckdb.DuckDBPyConnection, threshold: float) -> tuple[bool, float]:
    """(whether the queue is up to date with the scores, its case window in hours), read before a live write."""
    found = cur.execute("SELECT value FROM case_meta WHERE key = 'fingerprint'").fetchall()
    stored = found[0] if found else None
    if stored is None:
        return False, CASE_WINDOW_HOURS
    window = float(str(stored[0]).rsplit("|", 1)[-1])
    return stored[0] == scores_fingerprint(cur, threshold) + f"|{window:g}", window


def add_alert(cur: duckdb.DuckDBPyConnection, transaction_id: str, window_hours: float, scores: str = "scores",
              transactions: str = "transactions") -> tuple[str, bool]:
    """Inside the live write (score stored): the alert row and its case; returns (case_id, regrouping needed).

    `scores` and `transactions` may name relations holding just the batch's rows (as stored), so the alert is read
    without scanning the stored tables."""
    cols = _table_columns(cur, "alerts")
    segments = bool(cur.execute("SELECT count(*) FROM customer_segments").fetchone()[0])
    segment = ("(SELECT any_value(segment_name) FROM customer_segments WHERE customer_id = t.customer_id)"
               if segments else "NULL::VARCHAR")
    cur.execute(f"""CREATE OR REPLACE TEMP TABLE _live_alert AS
        SELECT t.transaction_id AS alert_id, t.* EXCLUDE (transaction_id), s.score, s.scorer, s.model_id,
               s.scored_at AS raised_at, s.score * t.amount AS expected_loss, s.reasons,
               json_extract_string(s.reasons, '$[0].feature') AS top_reason, {segment} AS segment
        FROM {scores} s JOIN {transactions} t USING (transaction_id) WHERE s.transaction_id = $id""",
                {"id": transaction_id})
    top, ts, customer = cur.execute("SELECT top_reason, ts, customer_id FROM _live_alert").fetchone()
    previous = None if customer is None else cur.execute(
        """SELECT case_id, ts FROM alerts WHERE customer_id = $c AND alert_id <> $id
           ORDER BY ts DESC, alert_id DESC LIMIT 1""", {"c": customer, "id": transaction_id}).fetchone()
    late = previous is not None and previous[1] > ts
    joins = previous is not None and not late and (ts - previous[1]).total_seconds() <= window_hours * 3_600
    case_id = previous[0] if joins else transaction_id
    have = set(_table_columns(cur, "_live_alert"))
    values = {"reason_family": "?", "case_id": "?"}
    select = ", ".join(values.get(c, quote_ident(c) if c in have else "NULL") for c in cols)
    params = [p for c in cols for p in ((reason_family(top),) if c == "reason_family" else
                                        (case_id,) if c == "case_id" else ())]
    cur.execute(f"INSERT INTO alerts SELECT {select} FROM _live_alert", params)
    cur.execute("DROP TABLE _live_alert")
    case_cols = ", ".join(quote_ident(c) for c in _table_columns(cur, "cases"))
    cur.execute("DELETE FROM cases WHERE case_id = ?", [case_id])
    cur.execute(f"INSERT INTO cases ({case_cols}) SELECT {case_cols} FROM ({CASES_SELECT}) WHERE case_id = ?",
                [case_id])
    return case_id, late


def add_history(cur: duckdb.DuckDBPyConnection, transaction_id: str) -> None:
    """The event's row in `case_history` (the customer's history a case page reads), when that table exists."""
    cols = _table_columns(cur, "case_history")
    if not cols:
        return
    source = {"score": "s.score"} | {c: f"f.{quote_ident(c)}" for c in ("c_new_device", "c_new_country")}
    select = ", ".join(source.get(c, f"t.{quote_ident(c)}") for c in cols)
    cur.execute(f"""INSERT INTO case_history SELECT {select} FROM transactions t
                    LEFT JOIN scores s USING (transaction_id) LEFT JOIN features f USING (transaction_id)
                    WHERE t.transaction_id = ? AND t.customer_id IS NOT NULL""", [transaction_id])


def add_history_rows(cur: duckdb.DuckDBPyConnection, new: str, scores: str, features: str) -> None:
    """The rows of a live batch in `case_history`, from the batch's own registered relations (`new`: its transactions,
    `scores`, `features`), so no stored table is scanned; nothing when that table does not exist."""
    cols = _table_columns(cur, "case_history")
    if not cols:
        return
    have = set(_result_columns(cur, f"SELECT * FROM {new} LIMIT 0"))
    source = {"score": "s.score"} | {c: f"f.{quote_ident(c)}" for c in ("c_new_device", "c_new_country")}
    select = ", ".join(source.get(c, f"t.{quote_ident(c)}" if c in have else f"NULL AS {quote_ident(c)}") for c in cols)
    cur.execute(f"""INSERT INTO case_history SELECT {select} FROM {new} t
                    LEFT JOIN {scores} s USING (transaction_id) LEFT JOIN {features} f USING (transaction_id)
                    WHERE t.customer_id IS NOT NULL""")


def move_fingerprint(cur: duckdb.DuckDBPyConnection, threshold: float, window_hours: float) -> None:
    """Record that the queue includes every score now (inside the same write as the live alert)."""
    cur.execute("INSERT OR REPLACE INTO case_meta VALUES ('fingerprint', ?)",
                [scores_fingerprint(cur, threshold) + f"|{window_hours:g}"])
