"""The customers' older rows summarised once and kept, so an append does not aggregate every earlier row again.

The customer group's lifetime columns (history count, mean, spread, tenure, time since the previous row) combine the
rows a recomputed row's windows read with an aggregate of the customer's rows before them: before `cut`, the
customer's earliest recomputed row minus the longest window. Aggregating those joined every earlier transaction on
the customer id (0.8-0.9 s of an append at 10M rows). `customer_totals` keeps, per customer, the count, sum, mean,
squared deviations, first and last time of the rows before a settled time S; an append folds in the rows S moves past
(about one append's span) and any loaded late before S, and a customer's older aggregate is its kept one combined
(Chan et al.) with its rows in [S, cut). A customer whose cut is before S (a row later than MARGIN behind the rest)
is aggregated from every earlier row, as before. The mark in meta (last row id folded, rows up to it, S) proves what
the table covers; when it does not add up (rows deleted, the table missing) the table is made again.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import numpy as np

from fraudlab.incremental.arrays import fetch_arrays  # (not fraudlab.features: the full build imports this module)

TABLE = "customer_totals"
MARK = "customer_totals_mark"  # in meta: "<last row id folded>|<rows up to it>|<S as epoch microseconds>"
MARGIN = timedelta(days=2)  # S trails the earliest window start by this, so a day-late row still finds it kept
_AGG = ("count(*) AS n, sum(t.amount::DOUBLE) AS s, avg(t.amount::DOUBLE) AS m, "
        "var_pop(t.amount::DOUBLE) * count(*) AS q")
_FIELDS = ("n", "s", "m", "q", "first", "last")


def _rows_sql(source: str, where: str = "TRUE") -> str:
    return (f"SELECT t.customer_id, {_AGG}, min(t.ts) AS first_ts, max(t.ts) AS last_ts FROM {source} t "
            f"WHERE {where} GROUP BY 1")


def build_totals(cur: duckdb.DuckDBPyConnection, span_s: int) -> None:
    """Make customer_totals from every transaction before the newest minus the longest window (`span_s`) and MARGIN."""
    newest = cur.execute("SELECT max(ts) FROM transactions").fetchone()[0]
    _build(cur, (newest or datetime(1970, 1, 1)) - timedelta(seconds=span_s) - MARGIN)


def _build(cur: duckdb.DuckDBPyConnection, settled: datetime) -> None:
    cur.execute(f"CREATE OR REPLACE TABLE {TABLE} AS {_rows_sql('transactions', 't.ts < $s')}", {"s": settled})
    _mark(cur, settled)


def drop_totals(cur: duckdb.DuckDBPyConnection) -> None:
    """Forget the kept totals (the plan has no customer group to complete)."""
    cur.execute(f"DROP TABLE IF EXISTS {TABLE}")
    cur.execute("DELETE FROM meta WHERE key = ?", [MARK])


def _mark(cur: duckdb.DuckDBPyConnection, settled: datetime) -> None:
    cur.execute("INSERT OR REPLACE INTO meta SELECT $k, coalesce(max(rowid), -1)::VARCHAR || '|' || count(*)::VARCHAR "
                "|| '|' || epoch_us($s::TIMESTAMP)::VARCHAR FROM transactions", {"k": MARK, "s": settled})


def settled_at(cur: duckdb.DuckDBPyConnection) -> tuple[int, datetime] | None:
    """(last row id folded, S) when the kept table covers exactly the rows its mark says; None otherwise."""
    row = cur.execute("SELECT value FROM meta WHERE key = ?", [MARK]).fetchone()
    if row is None or not cur.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'main' "
                                      "AND table_name = ?", [TABLE]).fetchone()[0]:
        return None
    last, count, settled = (int(v) for v in row[0].split("|"))
    covered = cur.execute("SELECT count(*) FROM transactions WHERE rowid <= $last", {"last": last}).fetchone()[0]
    if covered != count:
        return None
    return last, datetime(1970, 1, 1) + timedelta(microseconds=settled)


def _bring_up(cur: duckdb.DuckDBPyConnection, want: datetime) -> datetime:
    """Fold into the kept table the rows before `want` it lacks (moving S up to `want` if later); returns S."""
    state = settled_at(cur)
    if state is None:
        _build(cur, want)
        return want
    last, settled = state
    new = max(settled, want)
    rows = ("(SELECT * FROM transactions WHERE ts >= $s AND ts < $new AND rowid <= $last "
            "UNION ALL SELECT * FROM transactions WHERE rowid > $last AND ts < $new)")  # (late rows before S too)
    cur.execute(f"CREATE OR REPLACE TEMP TABLE _tnew AS {_rows_sql(rows)}", {"s": settled, "new": new, "last": last})
    _fold(cur)
    _mark(cur, new)
    return new


def _fold(cur: duckdb.DuckDBPyConnection) -> None:
    """Combine _tnew into the kept table (Chan et al. for the squared deviations) and add its new customers."""
    cur.execute(f"""UPDATE {TABLE} k SET n = k.n + d.n, s = k.s + d.s, m = (k.s + d.s) / (k.n + d.n),
                      q = k.q + d.q + (d.m - k.m) * (d.m - k.m) * k.n * d.n / (k.n + d.n),
                      first_ts = least(k.first_ts, d.first_ts), last_ts = greatest(k.last_ts, d.last_ts)
                    FROM _tnew d WHERE k.customer_id IS NOT DISTINCT FROM d.customer_id""")
    cur.execute(f"INSERT INTO {TABLE} SELECT d.* FROM _tnew d ANTI JOIN {TABLE} k "
                "ON k.customer_id IS NOT DISTINCT FROM d.customer_id")
    cur.execute("DROP TABLE _tnew")


def older(cur: duckdb.DuckDBPyConnection, codes: int) -> dict[str, np.ndarray]:
    """Per customer code of temp table _ckeys (k, cut, code): count, sum, mean, squared deviations, first and last time
    (epoch microseconds) of its rows before its cut; zero where there are none. Brings the kept table up first."""
    want = cur.execute("SELECT min(cut) FROM _ckeys").fetchone()[0]
    if want is None:
        return _by_code({}, codes)
    settled = _bring_up(cur, want - MARGIN)
    join = "JOIN _ckeys b ON t.customer_id IS NOT DISTINCT FROM b.k"
    select = f"b.code, {_AGG}, epoch_us(min(t.ts)) AS first, epoch_us(max(t.ts)) AS last"
    kept = fetch_arrays(cur, f"""SELECT b.code, t.n, t.s, t.m, t.q, epoch_us(t.first_ts) AS first,
                                        epoch_us(t.last_ts) AS last FROM {TABLE} t {join} WHERE b.cut >= $s""",
                        {"s": settled})
    recent = fetch_arrays(cur, f"SELECT {select} FROM transactions t {join} WHERE t.ts >= $s AND t.ts < b.cut "
                               "GROUP BY 1", {"s": settled})
    total = _combine(_by_code(kept, codes), _by_code(recent, codes))
    if cur.execute("SELECT count(*) FROM _ckeys WHERE cut < $s", {"s": settled}).fetchone()[0]:
        early = fetch_arrays(cur, f"SELECT {select} FROM transactions t {join} WHERE b.cut < $s AND t.ts < b.cut "
                                  "GROUP BY 1", {"s": settled})  # (their kept rows reach past the cut)
        for name, column in _by_code(early, codes).items():
            total[name][early["code"].astype(np.int64)] = column[early["code"].astype(np.int64)]
    return total


def _by_code(got: dict[str, np.ndarray], codes: int) -> dict[str, np.ndarray]:
    out = {}
    for name in _FIELDS:
        column = np.zeros(codes, dtype=np.int64 if name in ("n", "first", "last") else np.float64)
        if got:
            column[got["code"].astype(np.int64)] = got[name]
        out[name] = column
    return out


def _combine(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Two partial aggregates of disjoint rows as one (Chan et al.); zero rows on a side leaves the other as it is."""
    n = a["n"] + b["n"]
    only_a, only_b = b["n"] == 0, a["n"] == 0
    safe = np.maximum(n, 1)
    mean = np.where(only_a, a["m"], np.where(only_b, b["m"], (a["s"] + b["s"]) / safe))
    delta = b["m"] - a["m"]
    q = np.where(only_a, a["q"], np.where(only_b, b["q"], a["q"] + b["q"] + delta * delta * a["n"] * b["n"] / safe))
    first = np.where(only_a, a["first"], np.where(only_b, b["first"], np.minimum(a["first"], b["first"])))
    last = np.where(only_a, a["last"], np.where(only_b, b["last"], np.maximum(a["last"], b["last"])))
    return {"n": n, "s": a["s"] + b["s"], "m": mean, "q": q, "first": first, "last": last}
