"""First-time flags from kept first times, so an append does not scan every transaction once per flag.

`customer_firsts` (kind, customer_id, value, first_ts) holds, for each flag column (merchant, device, country), the
first time each customer used each value: a row is a first when its pair's first time is not before it. The full
feature build makes the table; transactions are only ever appended, so an update folds in the rows past a row-id
mark. When the mark does not add up (rows deleted, the table missing, other flag columns) it is made again.
"""
from __future__ import annotations

import duckdb

from fraudlab.workspace import quote_ident

FLAG_COLUMNS = {"merchant_id": "c_new_merchant", "device_id": "c_new_device", "country": "c_new_country"}
TABLE = "customer_firsts"
MARK = "customer_firsts_mark"  # in meta: "<last row id folded>|<rows folded>|<flag columns>"
SAME_PAIR = "{a}.kind = {b}.kind AND {a}.customer_id IS NOT DISTINCT FROM {b}.customer_id AND {a}.value = {b}.value"


def flag_columns(aliases: set[str]) -> list[str]:
    """The flag columns whose first-time feature is among `aliases` (the customer group's column names)."""
    return [col for col, flag in FLAG_COLUMNS.items() if flag in aliases]


def _pairs_sql(cols: list[str], source: str, where: str = "", grouped: bool = True) -> str:
    """(kind, customer_id, value[, first_ts]) of `source`'s rows for each flag column."""
    parts = []
    for col in cols:
        c = quote_ident(col)
        head = f"SELECT '{col}' AS kind, customer_id, {c}::VARCHAR AS value"
        parts.append(f"{head}, min(ts) AS first_ts FROM {source} WHERE {c} IS NOT NULL {where} GROUP BY ALL"
                     if grouped else f"SELECT DISTINCT * FROM ({head} FROM {source} WHERE {c} IS NOT NULL)")
    return " UNION ALL ".join(parts)


def build_firsts(cur: duckdb.DuckDBPyConnection, cols: list[str]) -> None:
    """Make customer_firsts from every transaction (sorted by kind, so a kind's lookups skip the others)."""
    if not cols:
        cur.execute(f"DROP TABLE IF EXISTS {TABLE}")
        cur.execute("DELETE FROM meta WHERE key = ?", [MARK])
        return
    cur.execute(f"CREATE OR REPLACE TABLE {TABLE} AS SELECT * FROM ({_pairs_sql(cols, 'transactions')}) ORDER BY 1")
    _mark(cur, cols)


def _mark(cur: duckdb.DuckDBPyConnection, cols: list[str]) -> None:
    cur.execute("INSERT OR REPLACE INTO meta SELECT ?, coalesce(max(rowid), -1)::VARCHAR || '|' || count(*)::VARCHAR "
                "|| '|' || ? FROM transactions", [MARK, ",".join(cols)])


def _folded_up_to(cur: duckdb.DuckDBPyConnection, cols: list[str]) -> int | None:
    """The last row id the kept table covers, or None when it cannot be trusted (then it is made again)."""
    row = cur.execute("SELECT value FROM meta WHERE key = ?", [MARK]).fetchone()
    tables = {r[0] for r in cur.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'").fetchall()}
    if row is None or TABLE not in tables:
        return None
    last, count, kinds = row[0].split("|", 2)
    covered = cur.execute("SELECT count(*) FROM transactions WHERE rowid <= $last", {"last": int(last)}).fetchone()[0]
    return int(last) if kinds == ",".join(cols) and covered == int(count) else None


def first_flags(cur: duckdb.DuckDBPyConnection, cols: list[str], flag_names: dict[str, str] = FLAG_COLUMNS) -> None:
    """Temp table _cflags (transaction_id and one 0/1 flag per column) for the rows of _affrows, and the kept table
    brought up to every stored transaction in the same write."""
    last = _folded_up_to(cur, cols)
    if last is None:
        build_firsts(cur, cols)
        last = int(cur.execute("SELECT coalesce(max(rowid), -1) FROM transactions").fetchone()[0])
    cur.execute(f"CREATE OR REPLACE TEMP TABLE _fnew AS {_pairs_sql(cols, 'transactions', 'AND rowid > $last')}",
                {"last": last})
    wanted = f"SELECT * FROM ({_pairs_sql(cols, '_affrows', grouped=False)}) UNION SELECT kind, customer_id, value FROM _fnew"
    cur.execute(f"CREATE OR REPLACE TEMP TABLE _fkept AS SELECT f.* FROM {TABLE} f SEMI JOIN ({wanted}) p "
                f"ON {SAME_PAIR.format(a='f', b='p')}")
    _fold(cur, cols)
    cur.execute("CREATE OR REPLACE TEMP TABLE _ftime AS SELECT kind, customer_id, value, min(first_ts) AS first_ts "
                "FROM (SELECT * FROM _fkept UNION ALL SELECT * FROM _fnew) GROUP BY ALL")
    cases, joins = [], []
    for i, col in enumerate(cols):
        c, f = quote_ident(col), f"f{i}"
        cases.append(f"CASE WHEN a.{c} IS NULL THEN NULL ELSE ({f}.first_ts >= a.ts)::INTEGER END AS {flag_names[col]}")
        joins.append(f"LEFT JOIN _ftime {f} ON {f}.kind = '{col}' AND a.customer_id IS NOT DISTINCT FROM "
                     f"{f}.customer_id AND a.{c}::VARCHAR = {f}.value")
    cur.execute(f"CREATE OR REPLACE TEMP TABLE _cflags AS SELECT a.transaction_id, {', '.join(cases)} "
                f"FROM _affrows a {' '.join(joins)}")
    for name in ("_fnew", "_fkept", "_ftime"):
        cur.execute(f"DROP TABLE {name}")


def _fold(cur: duckdb.DuckDBPyConnection, cols: list[str]) -> None:
    """Add the pairs first seen in the rows past the mark; move a pair's first time back when a late row is earlier."""
    cur.execute(f"INSERT INTO {TABLE} SELECT n.* FROM _fnew n ANTI JOIN _fkept k ON {SAME_PAIR.format(a='n', b='k')}")
    cur.execute(f"""CREATE OR REPLACE TEMP TABLE _fback AS SELECT n.* FROM _fnew n JOIN _fkept k
                    ON {SAME_PAIR.format(a='n', b='k')} WHERE n.first_ts < k.first_ts""")
    if cur.execute("SELECT count(*) FROM _fback").fetchone()[0]:  # (only then a second pass over the kept table)
        cur.execute(f"UPDATE {TABLE} f SET first_ts = b.first_ts FROM _fback b WHERE {SAME_PAIR.format(a='f', b='b')}")
    cur.execute("DROP TABLE _fback")
    _mark(cur, cols)
