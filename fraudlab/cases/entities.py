"""Entity lookups of the case page: per shared value (device, IP, card, e-mail) its customers, transactions and frauds.

`case_entities` holds the counts, `case_entity_pairs` each (kind, value, customer) seen, so that after an append
only the new rows' contributions are added: transactions and frauds add up, and a customer counts once, the first
time its pair appears. Values whose counted rows changed label since the last count (an analyst's decision) and
values of rows stored live (they carry no load id) are recounted from the transactions; when the per-kind totals
then disagree with the transactions, or the labels changed in a way the marks cannot place, everything is recounted.
"""
from __future__ import annotations

from datetime import datetime

from fraudlab.labels import FRAUD_LABEL_ROWS_SQL, resolved_sql

LINK_KINDS = {"device_id": "device", "ip": "IP address", "card_id": "card", "email": "email"}
ENTITIES_MARK = "entities_cover_ingest"  # in case_meta: the entity counts include every row up to this load id
LABELS_MARK = "entities_labels"  # in case_meta: label rows and newest recorded_at when the entities were counted
LIVE_MARK = "entities_live"  # in case_meta: rows without a load id (stored live) when the entities were counted
META = "SELECT value FROM case_meta WHERE key = ?"


def _rows(cols: set[str], source: str = "transactions", where: str = "", touched: bool = False) -> str:
    """SQL of (kind, value, customer_id, transaction_id) for every linked value of `source`'s rows."""
    return " UNION ALL ".join(
        f"SELECT '{kind}' AS kind, {col} AS value, customer_id, transaction_id FROM {source} "
        f"WHERE {col} IS NOT NULL {where}"
        + (f" AND {col} IN (SELECT value FROM _ent WHERE kind = '{kind}')" if touched else "")
        for col, kind in LINK_KINDS.items() if col in cols)


def _count_pairs(cur, rows: str, labels: str) -> None:
    """Temp table _pairs: per kind, value and customer the transactions and frauds (two plain group-bys cost less
    than count(DISTINCT))."""
    cur.execute(f"""CREATE OR REPLACE TEMP TABLE _pairs AS
                    SELECT e.kind, e.value, e.customer_id, count(*) AS n, count(*) FILTER (l.label) AS f
                    FROM ({rows}) e LEFT JOIN ({resolved_sql(None, labels)}) l USING (transaction_id)
                    GROUP BY 1, 2, 3""")


PAIRS_COUNTS = """SELECT kind, value, count(customer_id) AS customers, sum(n)::BIGINT AS transactions,
                         sum(f)::BIGINT AS fraud FROM _pairs GROUP BY 1, 2"""


def _fraud_labels(cur) -> None:
    """Temp table _elab: the label rows of transactions with a fraud label (only those can resolve to fraud)."""
    cur.execute(f"CREATE OR REPLACE TEMP TABLE _elab AS {FRAUD_LABEL_ROWS_SQL}")


def count_entities(cur, cols: set[str]) -> None:
    """Count every linked value over all transactions (tables sorted by key, so a case page reads a few row groups)."""
    rows = _rows(cols)
    if not rows:
        return
    _fraud_labels(cur)
    _count_pairs(cur, rows, "_elab")
    cur.execute("CREATE OR REPLACE TABLE case_entity_pairs AS SELECT kind, value, customer_id FROM _pairs "
                "WHERE customer_id IS NOT NULL ORDER BY 1, 2, 3")
    cur.execute(f"CREATE OR REPLACE TABLE case_entities AS {PAIRS_COUNTS} ORDER BY 1, 2")
    cur.execute("DROP TABLE _pairs")
    cur.execute("DROP TABLE _elab")
    mark_entities_counted(cur)


def mark_entities_counted(cur, live: bool = True) -> None:
    """Note that the entity counts include every stored row and label: the next partial count starts past these
    marks (the newest load id, the label rows and their newest recorded time and, with `live`, the rows stored
    live)."""
    cur.execute(f"""INSERT OR REPLACE INTO case_meta
                    SELECT ?, coalesce(max(ingest_id), 0)::VARCHAR FROM transactions UNION ALL
                    SELECT ?, count(*)::VARCHAR || '|' || coalesce(max(recorded_at)::VARCHAR, '') FROM labels
                    {"UNION ALL SELECT ?, count(*) FILTER (ingest_id IS NULL)::VARCHAR FROM transactions" if live else ""}""",
                [ENTITIES_MARK, LABELS_MARK] + ([LIVE_MARK] if live else []))


def count_loaded(cur) -> bool:
    """Add the rows loaded since the last count (and relabelled rows) to the entity counts: the work of the case
    queue's refresh that needs no scores, run beside the features' update (`Workspace.write(beside=...)`), so the
    refresh finds nothing left but the rows stored live. False when there is nothing to count or the marks do not
    add up (the refresh then counts as it always did)."""
    cols = {d[0] for d in cur.execute("SELECT * FROM transactions LIMIT 0").description}
    return "customer_id" in cols and bool(_rows(cols)) and update_entities(cur, cols, None)


def update_entities(cur, cols: set[str], since: datetime | None) -> bool:
    """Add the rows loaded past the mark to the counts, recount the values of relabelled and live rows (from
    `since` on; with `since` None the live rows are left, uncounted and unmarked, to the next call with a time);
    False when the marks are missing or do not add up (the caller recounts everything)."""
    if not _rows(cols):
        return True
    marks = [cur.execute(META, [key]).fetchone() for key in (ENTITIES_MARK, LIVE_MARK, LABELS_MARK)]
    tables = {r[0] for r in cur.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    if None in marks or not {"case_entities", "case_entity_pairs"} <= tables:
        return False
    mark, live = int(marks[0][0]), int(marks[1][0])
    n_labels, newest = marks[2][0].split("|")
    cur.execute("CREATE OR REPLACE TEMP TABLE _rlab AS SELECT * FROM labels WHERE recorded_at > "
                "coalesce($newest::TIMESTAMP, '-infinity'::TIMESTAMP)", {"newest": newest or None})
    added, total = cur.execute("SELECT (SELECT count(*) FROM _rlab), (SELECT count(*) FROM labels)").fetchone()
    if total != int(n_labels) + added:  # labels deleted, or stored with an older time: not placeable
        return False
    keep = ", ".join(["transaction_id", "customer_id", *[c for c in LINK_KINDS if c in cols]])
    cur.execute(f"CREATE OR REPLACE TEMP TABLE _new AS SELECT {keep} FROM transactions WHERE ingest_id > $m",
                {"m": mark})
    cur.execute("CREATE OR REPLACE TEMP TABLE _nlab AS SELECT * FROM _rlab SEMI JOIN _new USING (transaction_id)")
    _add_new_rows(cur, cols)
    live_left = since is None and _live_rows(cur) != live
    _recount_touched(cur, cols, since, live)
    for table in ("_rlab", "_new", "_nlab"):
        cur.execute(f"DROP TABLE {table}")
    if live_left:  # uncounted live rows: the totals cannot add up until the next call with a time counts them
        mark_entities_counted(cur, live=False)
        return True
    if not entity_totals_match(cur, cols):
        return False
    mark_entities_counted(cur)
    return True


def _live_rows(cur) -> int:
    return cur.execute("SELECT count(*) FILTER (ingest_id IS NULL) FROM transactions").fetchone()[0]


def _add_new_rows(cur, cols: set[str]) -> None:
    """The new rows' transactions and frauds added to their values; customers for pairs not seen before."""
    _count_pairs(cur, _rows(cols, "_new"), "_nlab")
    cur.execute("""CREATE OR REPLACE TEMP TABLE _fresh AS SELECT d.kind, d.value, d.customer_id FROM _pairs d
                   ANTI JOIN case_entity_pairs p USING (kind, value, customer_id) WHERE d.customer_id IS NOT NULL""")
    cur.execute("INSERT INTO case_entity_pairs SELECT * FROM _fresh")
    cur.execute("""MERGE INTO case_entities e
                   USING (SELECT d.kind, d.value, coalesce(c.customers, 0) AS customers, d.transactions, d.fraud
                          FROM (SELECT kind, value, sum(n)::BIGINT AS transactions, sum(f)::BIGINT AS fraud
                                FROM _pairs GROUP BY 1, 2) d
                          LEFT JOIN (SELECT kind, value, count(*) AS customers FROM _fresh GROUP BY 1, 2) c
                          USING (kind, value)) d
                   ON e.kind = d.kind AND e.value = d.value
                   WHEN MATCHED THEN UPDATE SET customers = e.customers + d.customers,
                        transactions = e.transactions + d.transactions, fraud = e.fraud + d.fraud
                   WHEN NOT MATCHED THEN INSERT VALUES (d.kind, d.value, d.customers, d.transactions, d.fraud)""")
    cur.execute("DROP TABLE _fresh")
    cur.execute("DROP TABLE _pairs")


def _recount_touched(cur, cols: set[str], since: datetime | None, live: int) -> None:
    """Recount from the transactions the values of rows whose label changed since the last count and, when rows
    were stored live since and `since` is given, of live rows from `since` on (a live row carries no mark telling
    whether it was counted)."""
    parts = []
    relabelled = cur.execute("SELECT count(*) FROM (SELECT transaction_id FROM _rlab ANTI JOIN _new "
                             "USING (transaction_id))").fetchone()[0]
    if relabelled:
        parts.append("transaction_id IN (SELECT transaction_id FROM _rlab ANTI JOIN _new USING (transaction_id))")
    if since is not None and _live_rows(cur) != live:
        parts.append("(ingest_id IS NULL AND ts >= $since)")
    if not parts:
        return
    where = "AND (" + " OR ".join(parts) + ")"
    cur.execute(f"CREATE OR REPLACE TEMP TABLE _ent AS SELECT DISTINCT kind, value FROM ({_rows(cols, where=where)})",
                {"since": since} if "$since" in where else {})
    _fraud_labels(cur)
    _count_pairs(cur, _rows(cols, touched=True), "_elab")
    for table in ("case_entities", "case_entity_pairs"):
        cur.execute(f"DELETE FROM {table} e USING _ent n WHERE e.kind = n.kind AND e.value = n.value")
    cur.execute("INSERT INTO case_entity_pairs SELECT kind, value, customer_id FROM _pairs "
                "WHERE customer_id IS NOT NULL")
    cur.execute(f"INSERT INTO case_entities {PAIRS_COUNTS}")
    for table in ("_ent", "_pairs", "_elab"):
        cur.execute(f"DROP TABLE {table}")


def entity_totals_match(cur, cols: set[str]) -> bool:
    """True when each kind's counted transactions equal the transactions carrying a value of it."""
    counted = dict(cur.execute("SELECT kind, sum(transactions) FROM case_entities GROUP BY 1").fetchall())
    have = cur.execute("SELECT " + ", ".join(f"count({col})" for col in LINK_KINDS if col in cols)
                       + " FROM transactions").fetchone()
    kinds = [kind for col, kind in LINK_KINDS.items() if col in cols]
    return all(int(counted.get(kind) or 0) == int(n) for kind, n in zip(kinds, have))
