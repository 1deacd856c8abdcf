"""The customer group for the rows being recomputed, from the customers' sorted history in NumPy.

The full build's customer group is about twenty window expressions over each customer's strictly-earlier rows:
counts and sums over 5 minutes .. 30 days, means and ratios against them, and all-history count, tenure, time since
the previous row, mean, standard deviation, ratio and z-score, plus first-time flags. Window sorts over the
customers' slices cost seconds at millions of rows; here one sort of the touched customers' (customer, time) pairs
and prefix sums answer every row to recompute: a window [t - W, t) is two binary searches, "strictly earlier"
excludes the row's own instant as EXCLUDE GROUP does. Sums use extended precision and the deviations are taken
from the customer's first amount, so values equal the full build's to rounding. The rows before the windows come as
one aggregate per customer (`fraudlab.incremental.totals`), first-time flags from the first time of each (customer,
value) pair, kept in `customer_firsts` (`fraudlab.incremental.firsts`).
"""
from __future__ import annotations

from typing import Callable

import duckdb
import numpy as np

from fraudlab.features import AVERAGE_WINDOWS, CUSTOMER_WINDOWS, FeaturePlan, _customer_features
from fraudlab.incremental.arrays import Run, affected_table, by_key_and_time, fetch_arrays, now, search
from fraudlab.incremental.firsts import FLAG_COLUMNS, first_flags, flag_columns
from fraudlab.incremental.lifetime import SPAN  # rows older than this before a customer's first recomputed row
from fraudlab.incremental.totals import older as older_totals
from fraudlab.workspace import quote_ident

PACK_LIMIT = np.iinfo(np.int64).max // 2  # customers x time span above this: times are ranked before packing


def applies(cur: duckdb.DuckDBPyConnection, plan: FeaturePlan) -> bool:
    """True when the plan's customer group is exactly the built-in one and amounts are doubles."""
    exprs = plan.by_key.get("customer_id")
    if not exprs:
        return False
    aliases = {_alias(e) for e in exprs}
    cols = {"customer_id", *flag_columns(aliases)}
    amount = cur.execute("SELECT data_type FROM information_schema.columns WHERE table_name = 'transactions' "
                         "AND column_name = 'amount'").fetchall()
    return exprs == _customer_features(cols) and amount == [("DOUBLE",)]


def _alias(expr: str) -> str:
    return expr.rsplit(" AS ", 1)[-1]


class _Sorted:
    """The touched customers' rows sorted by (customer, time), with extended-precision prefix sums.

    Each row is one int64, code * width + time offset: DuckDB sorts them (two threads) when the customers' span
    fits that packing; otherwise times are ranked first (NumPy sort), as `ranges.History` does."""

    def __init__(self, cur: duckdb.DuckDBPyConnection, history_sql: str, codes: int, span_us: tuple[int, int],
                 params: dict) -> None:
        self.low, self.times = span_us[0] - 1, None
        self.width = np.int64(span_us[1] - self.low + 2)
        if codes * int(self.width) < PACK_LIMIT:
            self._got = fetch_arrays(cur, f"SELECT code::BIGINT * $w + (us - $low) AS packed, amount FROM "
                                          f"({history_sql}) ORDER BY packed",
                                     {**params, "w": int(self.width), "low": self.low})
        else:
            self._got = fetch_arrays(cur, history_sql, params)
            self.times = np.unique(self._got["us"])
            self.width = np.int64(len(self.times) + 1)

    def build(self) -> None:
        """Sort (when DuckDB did not) and take the prefix sums: NumPy only, so it can run beside a query."""
        got = self._got
        if self.times is None:
            self.packed, amount = got["packed"].astype(np.int64), got["amount"]
            code_sorted, self.us = np.divmod(self.packed, self.width)
            self.us += self.low
        else:
            packed = got["code"].astype(np.int64) * self.width + np.searchsorted(self.times, got["us"])
            order = np.argsort(packed, kind="stable")
            self.packed, self.us, amount = packed[order], got["us"][order], got["amount"][order]
            code_sorted = self.packed // self.width
        first = np.ones(len(code_sorted), dtype=bool)
        first[1:] = code_sorted[1:] != code_sorted[:-1]
        self.ref = amount[np.maximum.accumulate(np.where(first, np.arange(len(first)), 0))]  # first amount
        dev = (amount - self.ref).astype(np.longdouble)
        self.s1 = np.r_[np.longdouble(0), np.cumsum(dev)]
        self.s2 = np.r_[np.longdouble(0), np.cumsum(dev * dev)]
        self.a1 = np.r_[np.longdouble(0), np.cumsum(amount.astype(np.longdouble))]

    def position(self, code: np.ndarray, us: np.ndarray) -> np.ndarray:
        """Index of the first row of `code` at or after time `us` (clipped into the customer's band)."""
        if self.times is None:
            offset = np.clip(us - self.low, 0, int(self.width) - 1)
        else:
            offset = np.searchsorted(self.times, us)
        return search(self.packed, code.astype(np.int64) * self.width + offset)


def customer_group(cur: duckdb.DuckDBPyConnection, plan: FeaturePlan, run: Run = now) -> Callable[[], tuple[int, int]]:
    """Read the touched customers' recent history and the aggregates of their older rows, and hand the NumPy work
    to `run`; the returned step writes temp table _gc (the customer group's columns for the rows of _affrows) and
    returns (history rows read, older rows summarised)."""
    cur.execute(f"""CREATE OR REPLACE TEMP TABLE _ckeys AS SELECT k, cut, hi, (row_number() OVER ()) - 1 AS code
                    FROM (SELECT customer_id AS k, min(ts) - INTERVAL {SPAN} SECOND AS cut, max(ts) AS hi
                          FROM _affrows GROUP BY 1)""")
    flags = flag_columns({_alias(e) for e in plan.by_key["customer_id"]})
    join = "transactions t JOIN _ckeys b ON t.customer_id IS NOT DISTINCT FROM b.k"
    history = (f"SELECT b.code, epoch_us(t.ts) AS us, t.amount::DOUBLE AS amount FROM {join} "
               "WHERE t.ts >= $floor AND t.ts >= b.cut AND t.ts <= b.hi")
    codes, floor, low, high = cur.execute("SELECT count(*), min(cut), epoch_us(min(cut)), epoch_us(max(hi)) FROM _ckeys"
                                          ).fetchone()
    rows = fetch_arrays(cur, """SELECT a.rowid AS r, b.code, epoch_us(a.ts) AS us, a.amount::DOUBLE AS amount
                                FROM _affrows a JOIN _ckeys b ON a.customer_id IS NOT DISTINCT FROM b.k""")
    older = older_totals(cur, int(codes))
    index = _Sorted(cur, history, int(codes), (int(low or 0), int(high or 0)), {"floor": floor})
    cur.execute("DROP TABLE IF EXISTS _ckeys")
    windows = run(_windows, index, rows, older)

    def finish() -> tuple[int, int]:
        if flags:
            first_flags(cur, flags)  # DuckDB, while `run`'s thread does the NumPy work
        names = [_alias(e) for e in plan.by_key["customer_id"]]
        columns = windows.result()
        where = {n: "c" if n in FLAG_COLUMNS.values() else "f" for n in names}
        affected_table(cur, "_gc", columns,
                       [f"{where[n]}.{quote_ident(n)}::{_type(n)} AS {quote_ident(n)}" for n in names],
                       " LEFT JOIN _cflags c ON c.transaction_id = a.transaction_id" if flags else "")
        cur.execute("DROP TABLE IF EXISTS _cflags")
        return len(index.packed), int(older["n"].sum())

    return finish


def _windows(index: _Sorted, rows: dict[str, np.ndarray], older: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The customer group's window and lifetime columns of `rows` (r, code, us, amount)."""
    index.build()
    rows = by_key_and_time(rows)
    code, us, amount = rows["code"], rows["us"], rows["amount"]
    out = {"r": rows["r"]}
    end = index.position(code, us)  # rows before the row's instant: the strictly-earlier ones
    start = index.position(code, np.full_like(us, index.low))
    for name, secs in CUSTOMER_WINDOWS.items():
        lo = index.position(code, us - int(secs) * 1_000_000)
        n = end - lo
        total = (index.a1[end] - index.a1[lo]).astype(float)
        out[f"c_cnt_{name}"], out[f"c_sum_{name}"] = n, np.where(n > 0, total, 0.0)
        if name in AVERAGE_WINDOWS:
            mean = np.where(n > 0, total / np.maximum(n, 1), np.nan)
            out[f"c_amt_mean_{name}"] = mean
            out[f"c_amt_ratio_{name}"] = amount / (np.where(n > 0, mean, amount) + 1)
    _lifetime(index, out, start, end, us, amount, {k: v[code] for k, v in older.items()})
    return out


def _type(name: str) -> str:
    if name.startswith("c_cnt_") or name == "c_hist_cnt":
        return "BIGINT"
    return "INTEGER" if name in FLAG_COLUMNS.values() else "DOUBLE"


def _lifetime(index: _Sorted, out: dict, start: np.ndarray, end: np.ndarray, us: np.ndarray,
              amount: np.ndarray, old: dict[str, np.ndarray]) -> None:
    """All-history columns over each row's strictly-earlier rows: the fetched ones (prefix sums) combined with the
    aggregates of the older ones like partial aggregates (NULL where the full build's are NULL)."""
    n1, n0 = end - start, old["n"]
    n = n0 + n1
    ref = index.ref[np.minimum(start, max(len(index.ref) - 1, 0))] if len(index.ref) else np.zeros(len(n1))
    s1 = (index.s1[end] - index.s1[start])
    s2 = (index.s2[end] - index.s2[start])
    safe = np.maximum(n1, 1)
    m1 = ref + s1 / safe  # (extended precision)
    q1 = s2 - s1 * s1 / safe
    both = (n0 > 0) & (n1 > 0)
    mean = np.where(n0 == 0, m1, np.where(n1 == 0, old["m"], (old["s"] + m1 * n1) / np.maximum(n, 1)))
    q = np.where(n0 == 0, q1, old["q"] + np.where(both, q1 + (m1 - old["m"]) ** 2 * n0 * n1 / np.maximum(n, 1), 0))
    mean = np.where(n > 0, mean.astype(float), np.nan)
    var = (q / np.maximum(n - 1, 1)).astype(float)
    std = np.where(n > 1, np.sqrt(np.maximum(var, 0.0)), np.nan)
    seconds = us / 1e6
    prev = index.us[np.maximum(end - 1, 0)] if len(index.us) else np.zeros(len(n1), dtype=np.int64)
    first = index.us[np.minimum(start, max(len(index.us) - 1, 0))] if len(index.us) else np.zeros(len(n1), np.int64)
    prev, first = np.where(n1 > 0, prev, old["last"]) / 1e6, np.where(n0 > 0, old["first"], first) / 1e6
    out["c_hist_cnt"] = n
    out["c_secs_since_prev"] = np.where(n > 0, seconds - prev, np.nan)
    out["c_tenure_s"] = np.where(n > 0, seconds - first, np.nan)
    out["c_amt_mean"] = mean
    out["c_amt_std"] = std
    out["c_amt_ratio"] = amount / (mean + 1)
    out["c_amt_z"] = (amount - mean) / (np.where(np.isnan(std), 0.0, std) + 1)
