"""The case queue after an append: alerts and customer histories replaced only for the rows scored since the last
build (a score is stored with the time it was computed, so those rows are the ones whose score, features or very
existence changed). Each step is checked against a cheap total; a step that does not add up returns False and the
caller rebuilds that table whole.
"""
from __future__ import annotations

from datetime import datetime

SCORES_MARK = "scores_mark"  # in case_meta: the newest scored_at when the queue was built
SCORES_COUNT = "scores_count"  # in case_meta: the number of scores then
FEATURES_MARK = "features_rowid"  # in case_meta: the features' last row id then (rows stored later come after it)
BUILT = "built_parts"  # in case_meta: how the last refresh built each part ("alerts=partial history=whole …")
BASIS = "queue_basis"  # in case_meta: threshold, case window and segmentation the alerts were built with
META = "SELECT value FROM case_meta WHERE key = ?"
CHANGED = "(SELECT transaction_id FROM _delta)"
HISTORY_SELECT = """SELECT t.customer_id, t.transaction_id, t.ts, t.amount, t.merchant_id, t.category, t.channel,
                           t.country, t.device_id, s.score{flags}
                    FROM {transactions} t LEFT JOIN {scores} s USING (transaction_id) {feature_join}
                    WHERE t.customer_id IS NOT NULL"""


def history_select(flags: list[str], transactions: str = "transactions", scores: str = "scores",
                   features: str = "features") -> str:
    """SQL of the customers' history rows (score and first-seen flags) from the named tables."""
    return HISTORY_SELECT.format(flags="".join(f", f.{c}" for c in flags), transactions=transactions, scores=scores,
                                 feature_join=f"LEFT JOIN {features} f USING (transaction_id)" if flags else "")


def changed_rows(cur, since: datetime) -> tuple[bool, datetime | None]:
    """Temp tables _delta (scores stored since the last build) and _drows (their transactions, looked for from
    `since` on first, everywhere when some are older); (whether the queue's score marks hold, their earliest time)."""
    mark = cur.execute(META, [SCORES_MARK]).fetchone()
    if mark is None or not mark[0]:
        return False, None
    cur.execute("CREATE OR REPLACE TEMP TABLE _delta AS SELECT * FROM scores WHERE scored_at > $m::TIMESTAMP",
                {"m": mark[0]})
    n, now = cur.execute("SELECT (SELECT count(*) FROM _delta), (SELECT count(*) FROM scores)").fetchone()
    # every score stored since the build is in _delta, so the scores now are at most the build's plus those; fewer
    # than the build's means scores were deleted without being stored again (a count, not a scan of the scores)
    built = cur.execute(META, [SCORES_COUNT]).fetchone()
    if built is None or not int(built[0]) <= now <= int(built[0]) + n:
        return False, None
    cur.execute(f"CREATE OR REPLACE TEMP TABLE _drows AS SELECT * FROM transactions WHERE ts >= $since "
                f"AND transaction_id IN {CHANGED}", {"since": since})
    if cur.execute("SELECT count(*) FROM _drows").fetchone()[0] < n:  # the caller's time was not the earliest
        cur.execute(f"CREATE OR REPLACE TEMP TABLE _drows AS SELECT * FROM transactions WHERE transaction_id IN {CHANGED}")
    return True, cur.execute("SELECT min(ts) FROM _drows").fetchone()[0]


def drop_changed(cur) -> None:
    """Drop the temp tables of :func:`changed_rows`."""
    for table in ("_delta", "_drows", "_dfeat"):
        cur.execute(f"DROP TABLE IF EXISTS {table}")


def _columns(cur, sql: str, params: dict | None = None) -> list[str]:
    result = cur.execute(f"SELECT * FROM ({sql}) LIMIT 0", params or {})
    names = [d[0] for d in result.description]
    result.fetchall()
    return names


def update_alerts(cur, select: str, params: dict) -> bool:
    """Replace the alerts of the changed rows (`select`: the alert rows of _delta and _drows); False when the stored
    table has other columns or a decided row is missing (the caller rebuilds it)."""
    tables = {r[0] for r in cur.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    if "alerts" not in tables or _columns(cur, "SELECT * FROM alerts") != _columns(cur, select, params) + ["case_id"]:
        return False
    cur.execute(f"DELETE FROM alerts WHERE alert_id IN {CHANGED}")
    cur.execute(f"INSERT INTO alerts SELECT *, NULL::VARCHAR AS case_id FROM ({select})", params)
    missing = cur.execute("SELECT count(*) FROM (SELECT alert_id FROM decision_alerts "
                          "EXCEPT SELECT alert_id FROM alerts)").fetchone()[0]
    return not missing or not cur.execute(  # decided rows without a score are no alerts in a rebuild either
        "SELECT count(*) FROM scores WHERE transaction_id IN (SELECT alert_id FROM decision_alerts "
        "EXCEPT SELECT alert_id FROM alerts)").fetchone()[0]


def update_history(cur, flags: list[str], earliest: datetime | None) -> bool:
    """Replace the history rows of the changed rows; False when the stored table has other columns or its row count
    disagrees with the transactions (the caller rebuilds it)."""
    tables = {r[0] for r in cur.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    if "case_history" not in tables or \
            _columns(cur, "SELECT * FROM case_history") != _columns(cur, history_select(flags)):
        return False
    if earliest is not None:
        if flags:
            _changed_features(cur, flags)
        cur.execute("DELETE FROM case_history h USING _delta d WHERE h.ts >= $e AND h.transaction_id = d.transaction_id",
                    {"e": earliest})  # a join: twice as fast as IN here
        cur.execute(f"INSERT INTO case_history {history_select(flags, '_drows', '_delta', '_dfeat')} "
                    "ORDER BY t.customer_id, t.ts")
    have, want = cur.execute("SELECT (SELECT count(*) FROM case_history), "
                             "(SELECT count(customer_id) FROM transactions)").fetchone()
    return have == want


def _changed_features(cur, flags: list[str]) -> None:
    """Temp table _dfeat: the flags of the changed rows, looked for past the features' row id mark first (rows
    replaced since the last build are stored after it), everywhere when some are not found there."""
    keep = ", ".join(["transaction_id", *flags])
    mark = cur.execute(META, [FEATURES_MARK]).fetchone()
    n = cur.execute("SELECT count(*) FROM _delta").fetchone()[0]
    if mark is not None and mark[0]:
        cur.execute(f"CREATE OR REPLACE TEMP TABLE _dfeat AS SELECT {keep} FROM features WHERE rowid > $r "
                    f"AND transaction_id IN {CHANGED}", {"r": int(mark[0])})
        if cur.execute("SELECT count(*) FROM _dfeat").fetchone()[0] == n:
            return
    cur.execute(f"CREATE OR REPLACE TEMP TABLE _dfeat AS SELECT {keep} FROM features WHERE transaction_id IN {CHANGED}")


def mark_built(cur, basis: str, built: str) -> None:
    """Note what the queue was built from (the newest score, the features' last row id, threshold, window and
    segmentation) and how each part was built."""
    tables = {r[0] for r in cur.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    rowid = "(SELECT max(rowid) FROM features)::VARCHAR" if "features" in tables else "NULL"
    cur.execute(f"""INSERT OR REPLACE INTO case_meta
                    SELECT ?, coalesce((SELECT max(scored_at) FROM scores)::VARCHAR, '') UNION ALL
                    SELECT ?, (SELECT count(*) FROM scores)::VARCHAR UNION ALL
                    SELECT ?, coalesce({rowid}, '') UNION ALL SELECT ?, ? UNION ALL SELECT ?, ?""",
                [SCORES_MARK, SCORES_COUNT, FEATURES_MARK, BASIS, basis, BUILT, built])
