"""Shared-key features (distinct customers per device, IP or card over 24 h and 7 d) for the rows being recomputed.

The full build counts distinct customers with count(DISTINCT customer_id) OVER a strictly-earlier RANGE window per
key: a sort of the key's whole slice. Here the touched keys' rows within reach of the affected rows are sorted once
by (key, time); each affected row's window [t - W, t) is two binary searches, and the distinct customers in it are
counted over the window's rows, expanded into (row, customer) pairs. A key shared by thousands of rows (a carrier's
NAT address) would expand too far: past MAX_PAIRS the caller runs the window SQL instead.
"""
from __future__ import annotations

import duckdb
import numpy as np

from fraudlab.features import SHARED_WINDOWS, FeaturePlan, shared_features
from fraudlab.incremental.arrays import affected_table, by_key_and_time, fetch_arrays, search
from fraudlab.workspace import quote_ident

MAX_PAIRS = 20_000_000  # window rows expanded at once (~0.5 GB of int64 arrays)


def applies(plan: FeaturePlan, key: str) -> bool:
    """True when the plan's features for this shared key are exactly the built-in distinct-customer windows."""
    short, exprs = plan.shared[key]
    return exprs == shared_features(key, short)


def shared_group(cur: duckdb.DuckDBPyConnection, plan: FeaturePlan, key: str, name: str) -> int | None:
    """Temp table `name` with the key's columns for the rows of _affrows that have the key; returns the history rows
    read, or None (nothing made) when the windows hold more than MAX_PAIRS rows together."""
    k, span = quote_ident(key), max(SHARED_WINDOWS.values())
    cur.execute(f"""CREATE OR REPLACE TEMP TABLE _skeys AS SELECT k, lo, hi, (row_number() OVER ()) - 1 AS code FROM (
                      SELECT {k} AS k, min(ts) AS lo, max(ts) AS hi FROM _affrows WHERE {k} IS NOT NULL GROUP BY 1)""")
    floor = cur.execute(f"SELECT min(lo) - INTERVAL {span} SECOND FROM _skeys").fetchall()[0][0]
    cur.execute(f"""CREATE OR REPLACE TEMP TABLE _shist AS SELECT b.code, epoch_us(t.ts) AS us, t.customer_id
                    FROM transactions t JOIN _skeys b ON t.{k} = b.k WHERE t.ts >= $floor AND t.ts < b.hi
                    AND t.ts >= b.lo - INTERVAL {span} SECOND""", {"floor": floor})
    hist = fetch_arrays(cur, """SELECT h.code, h.us, coalesce(c.n, -1) AS customer FROM _shist h LEFT JOIN (
                                  SELECT customer_id, (row_number() OVER ()) - 1 AS n
                                  FROM (SELECT DISTINCT customer_id FROM _shist WHERE customer_id IS NOT NULL)) c
                                USING (customer_id)""")  # (customers numbered in SQL: no Python string per row)
    rows = by_key_and_time(fetch_arrays(cur, f"""SELECT a.rowid AS r, b.code, epoch_us(a.ts) AS us FROM _affrows a
                                                 JOIN _skeys b ON a.{k} = b.k"""))
    cur.execute("DROP TABLE IF EXISTS _skeys; DROP TABLE IF EXISTS _shist")
    counts = _distinct_customers(hist, rows["code"], rows["us"])
    if counts is None:
        return None
    short, _exprs = plan.shared[key]
    columns = {f"{short}_customers_{w}": c for w, c in counts.items()}
    affected_table(cur, name, {"r": rows["r"]} | columns, [f"f.{c}::BIGINT AS {c}" for c in columns])
    return len(hist["us"])


def _distinct_customers(hist: dict[str, np.ndarray], code: np.ndarray, us: np.ndarray
                        ) -> dict[str, np.ndarray] | None:
    """Per query (key code, time in µs) and window: distinct non-null customers among the key's rows in [t - W, t)."""
    if not len(code):
        return {w: np.zeros(0, dtype=np.int64) for w in SHARED_WINDOWS}
    customer = hist["customer"]  # -1: no customer, not counted (as count(DISTINCT) skips NULL)
    low = int(hist["us"].min(initial=us.min())) - max(SHARED_WINDOWS.values()) * 1_000_000 - 1
    width = np.int64(int(hist["us"].max(initial=us.max())) - low + 2)  # every bound stays inside its key's band
    packed = hist["code"].astype(np.int64) * width + (hist["us"] - low)
    order = np.argsort(packed, kind="stable")
    packed, customer, when = packed[order], customer[order], hist["us"][order]
    base = code.astype(np.int64) * width - low
    end = search(packed, base + us)  # the key's rows before the row's instant (EXCLUDE GROUP)
    starts = {w: search(packed, base + us - secs * 1_000_000) for w, secs in SHARED_WINDOWS.items()}
    widest = starts[max(SHARED_WINDOWS, key=SHARED_WINDOWS.get)]
    lengths = end - widest
    if int(lengths.sum()) > MAX_PAIRS:
        return None
    query = np.repeat(np.arange(len(code)), lengths)
    pos = np.arange(len(query)) - np.repeat(np.cumsum(lengths) - lengths, lengths) + np.repeat(widest, lengths)
    seen, seen_at = customer[pos], when[pos]
    out = {}
    for w, secs in SHARED_WINDOWS.items():
        keep = (seen >= 0) & (seen_at >= us[query] - secs * 1_000_000)
        pairs = np.unique(query[keep] * np.int64(max(len(customer), 1)) + seen[keep])
        out[w] = np.bincount(pairs // max(len(customer), 1), minlength=len(code))
    return out
