"""The merchant group for the rows being recomputed, by binary search over the merchants' history.

The full build computes merchant volumes (`count(*)` over bounded, strictly-earlier windows, and the same windows
shifted back by the label delay) and merchant fraud counts (frauds known by then) with window sorts over every row.
An append touches most merchants, so the slice those windows need is the last 30 days + label delay of nearly all
history (about 40% of the table), sorted four times over to keep ~2% of it. Here each bound of each window is a
count of the merchant's rows before a time: one sort of the slice's (merchant, time) pairs, then a binary search per
affected row and bound. Timestamps compare in microseconds and label times in the full build's double seconds, with
its tie rules (a window starts inclusive, a row never sees its own instant), so the values are the full build's.
"""
from __future__ import annotations

from typing import Callable

import duckdb
import numpy as np

from fraudlab.features import MERCHANT_WINDOWS, FeaturePlan, _merchant_volume
from fraudlab.incremental.arrays import Run, affected_table, by_key_and_time, fetch_arrays, now, search
from fraudlab.labels import fraud_known_sql


def applies(plan: FeaturePlan) -> bool:
    """True when the plan's merchant group is exactly the built-in volumes and fraud counts computed here."""
    exprs = plan.by_key.get("merchant_id")
    return bool(exprs) and plan.has_merchant and exprs == _merchant_volume({"merchant_id"}, plan.label_delay_s)


class History:
    """(key, value) pairs sorted once, answering "how many rows of this key have a value before v" for many v.

    Integer values (microseconds) are packed with the key into one int64 when they fit, so one sort does; other
    values are ranked first."""

    def __init__(self, key: np.ndarray, value: np.ndarray) -> None:
        key = key.astype(np.int64)
        self.values = None
        if value.dtype.kind == "i" and len(value):
            self.low = int(value.min()) - 1
            self.width = np.int64(int(value.max()) - self.low + 2)
            if int(key.max()) + 1 < np.iinfo(np.int64).max // int(self.width):
                self.ranked = np.sort(key * self.width + (value - self.low))
                return
        self.values = np.unique(value)
        self.width = np.int64(len(self.values) + 1)
        self.ranked = np.sort(key * self.width + np.searchsorted(self.values, value))

    def position(self, key: np.ndarray, value: np.ndarray, inclusive: bool = False) -> np.ndarray:
        """Per query (key, value): the index of the key's first row with a value >= value (> when inclusive). The
        difference of two positions of the same key counts its rows between them."""
        if self.values is None:  # packed: clip the bound into the key's band [1, width - 1]
            bound = np.clip(value.astype(np.int64) - self.low + (1 if inclusive else 0), 0, int(self.width) - 1)
        else:
            bound = np.searchsorted(self.values, value, side="right" if inclusive else "left")
        return search(self.ranked, key.astype(np.int64) * self.width + bound)

    def before(self, key: np.ndarray, value: np.ndarray, inclusive: bool = False) -> np.ndarray:
        """Per query (key, value): rows of that key with a value < value (<= value when inclusive)."""
        return self.position(key, value, inclusive) - search(self.ranked, key.astype(np.int64) * self.width)


def merchant_group(cur: duckdb.DuckDBPyConnection, plan: FeaturePlan, label_delay_days: float,
                   run: Run = now) -> Callable[[], tuple[int, int]]:
    """Read the merchants' history and hand its NumPy work to `run`; the returned step writes temp tables _gm (the
    merchant volumes) and _mfraud (frauds known per window) for the rows of _affrows, shaped like the full build's,
    and returns how many history rows were read."""
    delay = plan.label_delay_s
    span = max(MERCHANT_WINDOWS.values()) + delay
    cur.execute("""CREATE OR REPLACE TEMP TABLE _mkeys AS
                   SELECT k, lo, hi, (row_number() OVER ()) - 1 AS code FROM (
                     SELECT t.merchant_id AS k, min(t.ts) AS lo, max(t.ts) AS hi
                     FROM _affrows t GROUP BY 1)""")
    floor = cur.execute(f"SELECT min(lo) - INTERVAL {int(span)} SECOND FROM _mkeys").fetchall()[0][0]
    join = (f"JOIN _mkeys b ON t.merchant_id IS NOT DISTINCT FROM b.k WHERE t.ts >= $floor "
            f"AND t.ts <= b.hi AND t.ts >= b.lo - INTERVAL {int(span)} SECOND")
    hist = fetch_arrays(cur, f"SELECT b.code, epoch_us(t.ts) AS us FROM transactions t {join}", {"floor": floor})
    rows = fetch_arrays(cur, """SELECT t.rowid AS r, b.code, epoch_us(t.ts) AS us, epoch(t.ts) AS ts_s
                                FROM _affrows t JOIN _mkeys b ON t.merchant_id IS NOT DISTINCT FROM b.k""")
    frauds = _slice_frauds(cur, join, floor, float(label_delay_days) * 86_400)
    cur.execute("DROP TABLE IF EXISTS _mkeys")
    counted = run(_merchant_counts, rows, hist, frauds, delay)

    def finish() -> int:
        volumes, counts = counted.result()
        affected_table(cur, "_gm", volumes, [f"f.m_cnt_{n}::BIGINT AS m_cnt_{n}, f.m_dcnt_{n}::BIGINT AS m_dcnt_{n}"
                                             for n in MERCHANT_WINDOWS])
        affected_table(cur, "_mfraud", counts, [f'f."{n}"::DOUBLE AS "{n}"' for n in MERCHANT_WINDOWS])
        return len(hist["us"]), 0

    return finish


def _slice_frauds(cur: duckdb.DuckDBPyConnection, join: str, floor, delay_s: float) -> dict[str, np.ndarray]:
    """(code, ts_s, known_s) of the merchants' rows in the slice that are fraud by their current label.

    The slice's rows with a fraud label row come first; then all label rows of just those (to resolve their current
    label), looked for within their id range first: where ids grow with time, zone maps skip the labels of older
    rows (probing every label row's id was 0.3-0.5 s at 10M rows)."""
    cur.execute(f"""CREATE OR REPLACE TEMP TABLE _fslice AS SELECT t.transaction_id, b.code, t.ts FROM transactions t
                    {join} AND t.merchant_id IS NOT NULL
                    AND t.transaction_id IN (SELECT transaction_id FROM labels WHERE is_fraud)""", {"floor": floor})
    lo, hi = cur.execute("SELECT min(transaction_id), max(transaction_id) FROM _fslice").fetchone()
    cur.execute("CREATE OR REPLACE TEMP TABLE _flab AS SELECT * FROM labels WHERE transaction_id BETWEEN $lo AND $hi "
                "AND transaction_id IN (SELECT transaction_id FROM _fslice)", {"lo": lo, "hi": hi})
    frauds = fetch_arrays(cur, f"""
        SELECT s.code, epoch(s.ts) AS ts_s,
               greatest(epoch(coalesce(f.known, s.ts + to_seconds({delay_s}))), epoch(s.ts) + 1e-3) AS known_s
        FROM ({fraud_known_sql('_flab')}) f JOIN _fslice s USING (transaction_id)""")
    cur.execute("DROP TABLE _fslice; DROP TABLE _flab")
    return frauds


def _merchant_counts(rows: dict[str, np.ndarray], hist: dict[str, np.ndarray], frauds: dict[str, np.ndarray],
                     delay: float) -> tuple[dict, dict]:
    """The merchant volumes and fraud counts of `rows` (NumPy only, so it can run beside a query)."""
    rows = by_key_and_time(rows)
    code, us = rows["code"], rows["us"]
    volumes = {"r": rows["r"]}
    history = History(hist["code"], hist["us"])
    seen = history.position(code, us)
    lag = int(delay) * 1_000_000
    upper = history.position(code, us - lag, inclusive=True) if lag else seen  # a lag of 0 still excludes the instant
    for name, secs in MERCHANT_WINDOWS.items():
        win = int(secs) * 1_000_000
        volumes[f"m_cnt_{name}"] = seen - history.position(code, us - win)
        volumes[f"m_dcnt_{name}"] = upper - history.position(code, us - win - lag)
    return volumes, _fraud_counts(rows, frauds, delay)


def _fraud_counts(rows: dict[str, np.ndarray], frauds: dict[str, np.ndarray], delay: float) -> dict:
    """Per affected row and window, the merchant's frauds whose label was known by then and whose transaction is
    within the window shifted back by the label delay (as `merchant_fraud_sql` counts)."""
    code, ts_s = rows["code"], rows["ts_s"]
    counts = {"r": rows["r"]}
    for name, window_s in MERCHANT_WINDOWS.items():
        secs = int(window_s + delay)
        ends = frauds["ts_s"] + secs
        live = ends >= frauds["known_s"]
        known = History(frauds["code"][live], frauds["known_s"][live]).before(code, ts_s, inclusive=True)
        gone = History(frauds["code"][live], ends[live]).before(code, ts_s)
        counts[name] = (known - gone).astype(float)
    return counts
