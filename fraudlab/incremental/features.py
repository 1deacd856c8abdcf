"""Incremental features: after a load, recompute only the rows whose strictly-earlier windows changed.

Which rows change. A new row of key k at time t enters the windows of the key's rows in (t, t + span], where span is
the key's longest window (plus the label delay for delayed windows and merchant fraud counts, whose frauds count on
[label known, ts + delay + window]). Lifetime features (history counts, first-time flags, tenure, all-history
user features) have no span: every later row of the key changes. So per key the affected rows are those with
ts in [earliest new ts of the key, latest new ts of the key + span] (no upper bound for lifetime keys); together with
the new rows they are the rows to recompute.

What history they read. Per key of the rows to recompute: the key's rows with ts in [earliest such ts - span, latest
such ts] (all earlier rows for lifetime keys). The same SQL as the full build (`fraudlab.features` group SQL and
`fraudlab.featurelab` definitions) runs over that slice, and only the rows to recompute are kept, so the values
are those of a full rebuild. The rows are replaced (DELETE + INSERT) in one write transaction.

The plan (which features exist) is decided again first; when it differs from the stored table (a new extra column,
a leakage verdict that flipped), or the increment is large, the caller falls back to the full rebuild.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Collection, Sequence

import duckdb
import pyarrow as pa

from fraudlab.auth.actors import SYSTEM, Actor
from fraudlab.featurelab.defs import parse_delay, parse_window
from fraudlab.featurelab.sql import relation_sql
from fraudlab.featurelab.store import active_definitions, source_columns
from fraudlab.features import (
    COVER_KEY,
    DEFAULT_LABEL_DELAY_DAYS,
    FEATURE_MEMORY_LIMIT,
    MERCHANT_WINDOWS,
    SHARED_WINDOWS,
    FeaturePlan,
    assemble_sql,
    base_sql,
    feature_info,
    group_sql,
    mark_covered,
    merchant_fraud_sql,
    plan_features,
)
from fraudlab.incremental import arrays, customer, lifetime, ranges, shared
from fraudlab.jobs import Progress, job_threads
from fraudlab.workspace import Workspace, quote_ident

MAX_SHARE = 0.30  # above this share of new rows, the full rebuild is cheaper than slicing
HAND_OVER_ROWS = 1_000_000  # up to this many recomputed rows are handed to the scorer in memory
NEW_ROWS_SQL = "SELECT t.* FROM transactions t ANTI JOIN features f USING (transaction_id)"
PAST_COVER_SQL = "SELECT t.* FROM transactions t WHERE t.ingest_id > $covered"
_TEMPS = ("_new", "_relab", "_aff", "_affrows", "_keys", "_sub", "_lab", "_base", "_frauds", "_mfraud", "_inc", "_g_row")


class PlanChanged(Exception):
    """The feature set a full build would make now differs from the stored table: rebuild whole."""


@dataclass(frozen=True)
class IncrementalReport:
    """What an incremental feature update did: rows new, rows recomputed, history rows read, time taken."""

    new_rows: int
    affected_rows: int
    history_rows: int
    first_ts: datetime | None
    seconds: float
    summarised_rows: int = 0  # older rows of the customers read by one aggregate instead of the window sorts
    rows: pa.Table | None = field(default=None, repr=False, compare=False)  # the recomputed rows, with ts (if few)

    @property
    def message(self) -> str:
        return (f"features updated incrementally: {self.new_rows:,} new rows, {self.affected_rows:,} rows "
                f"recomputed from {self.history_rows:,} history rows (+ {self.summarised_rows:,} older rows "
                f"summarised) in {self.seconds:.1f} s")


def pending_rows(ws: Workspace) -> tuple[int, int, int]:
    """(transactions, rows with features, transactions without features)."""
    total = ws.count("transactions")
    if not ws.has_table("features"):
        return total, 0, total
    cur = ws.cursor()
    try:
        sql, params = new_rows_sql(cur)
        return total, ws.count("features"), int(cur.execute(f"SELECT count(*) FROM ({sql})", params).fetchone()[0])
    finally:
        cur.close()


def new_rows_sql(cur: duckdb.DuckDBPyConnection) -> tuple[str, dict]:
    """SQL (and its parameters) of the transactions without features.

    Past the last build's or update's mark, by load id (zone maps skip the older row groups), when the counts prove
    those are exactly the rows missing; otherwise (a load committed out of order, rows added by other means) an
    anti join of every id against the features table."""
    mark = cur.execute("SELECT value FROM meta WHERE key = ?", [COVER_KEY]).fetchone()
    if mark is not None:
        params = {"covered": int(mark[0])}
        past = cur.execute(f"SELECT count(*) FROM ({PAST_COVER_SQL})", params).fetchone()[0]
        have, total = cur.execute("SELECT (SELECT count(*) FROM features), (SELECT count(*) FROM transactions)"
                                  ).fetchone()
        if past + have == total:
            return PAST_COVER_SQL, params
    return NEW_ROWS_SQL, {}


def can_update(ws: Workspace, max_share: float = MAX_SHARE) -> bool:
    """True when the features table holds every older row exactly once and the new rows are at most `max_share`."""
    total, have, missing = pending_rows(ws)
    return bool(have) and have + missing == total and 0 < missing <= max_share * total


def _spans(plan: FeaturePlan, defs: list) -> dict[str, int | None]:
    """Key column -> the longest window reaching back from a row (seconds; None for lifetime features)."""
    spans: dict[str, int | None] = {}

    def add(key: str, span: int | None) -> None:
        if key not in spans:
            spans[key] = span
        else:
            old = spans[key]
            spans[key] = None if old is None or span is None else max(old, span)

    if "customer_id" in plan.by_key:
        add("customer_id", None)  # history count, tenure, first-time flags: every earlier row
    if "merchant_id" in plan.by_key:
        add("merchant_id", max(MERCHANT_WINDOWS.values()) + plan.label_delay_s)
    for key in plan.shared:
        add(key, max(SHARED_WINDOWS.values()))
    for defn in defs:
        if defn.aggregate != "value":
            add(defn.key, _def_span(defn))
    return spans


def _def_span(defn) -> int | None:
    """How far back a user-defined feature's window reaches (None: all history)."""
    window = parse_window(defn.window)
    return None if window is None else window + parse_delay(defn.delay)


def _range(lo: str, hi: str, span: int | None, forward: bool) -> str:
    """ts bounds: forward [lo, hi + span] (rows a change reaches); backward [lo - span, hi] (history needed)."""
    if forward:
        return f"t.ts >= {lo}" + ("" if span is None else f" AND t.ts <= {hi} + INTERVAL {int(span)} SECOND")
    return f"t.ts <= {hi}" + ("" if span is None else f" AND t.ts >= {lo} - INTERVAL {int(span)} SECOND")


def _since(floor: datetime | None) -> str:
    """A WHERE on t.ts from `floor` (a parameter, so DuckDB skips the row groups before it); empty without one."""
    return "" if floor is None else "WHERE t.ts >= $floor"


RELABELLED_SQL = """SELECT transaction_id FROM labels WHERE recorded_at > (
    SELECT max(logged_at) FROM audit WHERE action IN ('build_features', 'update_features'))"""


def _affected(cur: duckdb.DuckDBPyConnection, spans: dict[str, int | None], changed: Sequence[str] = (),
              null_groups: Collection[str] = ()) -> None:
    """Temp table _aff (transaction_id): the new rows (and the `changed` ones) and every row whose windows they change.

    Labels recorded since the last feature build or update (an analyst's decision on an older row) change the
    merchant fraud counts after their row like a new row would: for the merchant key they seed the ranges too.
    A row without a key value reaches other rows only for the keys in `null_groups` (`FeaturePlan.null_groups`): a
    new row without an IP changes no other row's IP features (75% of IPs were missing in the simulated data: an
    append recomputed every recent row without one).
    """
    sql, params = new_rows_sql(cur)
    cols = ", ".join(quote_ident(c) for c in dict.fromkeys(["transaction_id", "ts", *spans]))  # what seeds need
    cur.execute(f"CREATE OR REPLACE TEMP TABLE _new AS SELECT {cols} FROM ({sql})", params)
    if changed:  # (without any, this join alone costs a hash table of every feature row)
        cur.execute(f"INSERT INTO _new SELECT {cols} FROM transactions t SEMI JOIN features f USING "
                    "(transaction_id) WHERE t.transaction_id IN (SELECT unnest($ids))", {"ids": list(changed)})
    cur.execute("CREATE OR REPLACE TEMP TABLE _aff AS SELECT transaction_id FROM _new")
    floor = None  # every affected row is at or after the earliest seed: scans skip the row groups before it
    cur.execute(f"CREATE OR REPLACE TEMP TABLE _relab AS {RELABELLED_SQL}")
    relabelled = cur.execute("SELECT count(*) FROM _relab").fetchone()[0]
    for key, span in spans.items():
        k = quote_ident(key)
        seeds = "_new"
        if key == "merchant_id" and relabelled:  # (a scan of every id only when there are some)
            seeds = f"(SELECT * FROM _new UNION ALL SELECT {cols} FROM transactions SEMI JOIN _relab USING (transaction_id))"
        valued = "" if key in null_groups else f"WHERE {k} IS NOT NULL"
        cur.execute(f"CREATE OR REPLACE TEMP TABLE _keys AS SELECT {k} AS k, min(ts) AS lo, max(ts) AS hi "
                    f"FROM {seeds} {valued} GROUP BY 1")
        lo = cur.execute("SELECT min(lo) FROM _keys").fetchall()[0][0]
        floor = lo if floor is None or (lo is not None and lo < floor) else floor
        cur.execute(f"""INSERT INTO _aff SELECT t.transaction_id FROM transactions t
                        JOIN _keys b ON t.{k} IS NOT DISTINCT FROM b.k
                        WHERE t.ts >= $floor AND {_range('b.lo', 'b.hi', span, forward=True)}""", {"floor": lo})
    cur.execute("CREATE OR REPLACE TEMP TABLE _aff AS SELECT DISTINCT transaction_id FROM _aff")
    cur.execute("CREATE OR REPLACE TEMP TABLE _affrows AS SELECT t.* FROM transactions t SEMI JOIN _aff "
                f"USING (transaction_id) {_since(floor)}", {} if floor is None else {"floor": floor})


def _slice(cur: duckdb.DuckDBPyConnection, key: str, span: int | None, null_group: bool = True) -> int:
    """Temp table _sub: the history the affected rows of `key` read (their keys, their windows; the rows without a
    key value only when they form a group); returns rows."""
    k = quote_ident(key)
    cur.execute(f"""CREATE OR REPLACE TEMP TABLE _keys AS SELECT t.{k} AS k, min(t.ts) AS lo, max(t.ts) AS hi
                    FROM _affrows t {'' if null_group else f'WHERE t.{k} IS NOT NULL'} GROUP BY 1""")
    floor = None if span is None else cur.execute(
        f"SELECT min(lo) - INTERVAL {int(span)} SECOND FROM _keys").fetchall()[0][0]
    cur.execute(f"""CREATE OR REPLACE TEMP TABLE _sub AS SELECT t.* FROM transactions t
                    JOIN _keys b ON t.{k} IS NOT DISTINCT FROM b.k {_since(floor)}
                    {'AND' if floor is not None else 'WHERE'} {_range('b.lo', 'b.hi', span, forward=False)}""",
                {"floor": floor} if floor is not None else {})
    return int(cur.execute("SELECT count(*) FROM _sub").fetchone()[0])


def _plain_base(source: str) -> str:
    """SQL of `source` shaped like the full build's base, without fraud label times."""
    return f"SELECT *, epoch(ts) AS ts_s, NULL::DOUBLE AS fraud_known_s FROM {source}"


def _base(cur: duckdb.DuckDBPyConnection, delay_days: float, with_labels: bool) -> None:
    """Temp table _base over _sub, shaped like the full build's (fraud label times only when asked)."""
    if with_labels:
        cur.execute("CREATE OR REPLACE TEMP TABLE _lab AS SELECT * FROM labels "
                    "WHERE transaction_id IN (SELECT transaction_id FROM _sub)")
        cur.execute(f"CREATE OR REPLACE TEMP TABLE _base AS {base_sql(delay_days, '_sub', '_lab')}")
    else:
        cur.execute(f"CREATE OR REPLACE TEMP TABLE _base AS {_plain_base('_sub')}")


def _keep(cur: duckdb.DuckDBPyConnection, name: str, select_sql: str) -> None:
    cur.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM ({select_sql}) "
                f"WHERE transaction_id IN (SELECT transaction_id FROM _aff)")


def _compute(cur: duckdb.DuckDBPyConnection, plan: FeaturePlan, spans: dict[str, int | None], delay_days: float,
             progress: Progress) -> tuple[int, int, list[str]]:
    """Temp table _inc: the full build's columns for the affected rows; returns (history rows read through
    windows, older rows summarised, temp names)."""
    read = summarised = 0
    row_base = f"({_plain_base('_affrows')})"  # (a subquery: the row group alone reads it)
    cur.execute(f"CREATE OR REPLACE TEMP TABLE _g_row AS {group_sql(plan, 'row', source=row_base)}")
    parts, temps = {"row": "_g_row"}, ["_g_row"]
    groups = list(plan.by_key) + list(plan.shared)
    with ThreadPoolExecutor(1) as pool:  # NumPy work of the customer and merchant groups beside the next queries
        run = arrays.now if job_threads(2) == 1 else pool.submit  # inline while a job leaves live scoring a core
        finish = []
        if "customer_id" in groups and customer.applies(cur, plan):  # sorted history in NumPy, no window sorts
            progress(0.2, "windows over customer_id")
            finish.append(customer.customer_group(cur, plan, run))
            parts["customer_id"] = "_gc"
            temps.append("_gc")
        if "merchant_id" in groups and ranges.applies(plan):  # binary search instead of window sorts
            progress(0.3, "windows over merchant_id")
            finish.append(ranges.merchant_group(cur, plan, delay_days, run))
            parts.update({"merchant_id": "_gm", "merchant_fraud": "_mfraud"})
            temps.append("_gm")
        for step in finish:
            fetched, aggregated = step()
            read, summarised = read + fetched, summarised + aggregated
    for i, key in enumerate(groups):
        progress(0.4 + 0.3 * i / max(len(groups), 1), f"windows over {key}")
        if key in parts:
            continue
        if key in plan.shared and shared.applies(plan, key):  # binary search + distinct pairs, no window sorts
            got = shared.shared_group(cur, plan, key, f"_g{i}")
            if got is not None:
                read += got
                parts[key] = f"_g{i}"
                temps.append(f"_g{i}")
                continue
        quick = key == "customer_id" and lifetime.applies(plan)  # lifetime columns from aggregates of older rows
        read += _slice(cur, key, lifetime.SPAN if quick else spans[key], null_group=key in plan.null_groups)
        merchant = key == "merchant_id" and plan.has_merchant
        _base(cur, delay_days, with_labels=merchant)
        parts[key] = f"_g{i}"
        temps.append(f"_g{i}")
        _keep(cur, f"_g{i}", group_sql(plan, key))
        if quick:
            summarised += lifetime.complete(cur, f"_g{i}", plan)
        if merchant:
            cur.execute(merchant_fraud_sql(plan.label_delay_s))
            cur.execute("DELETE FROM _mfraud WHERE transaction_id NOT IN (SELECT transaction_id FROM _aff)")
            parts["merchant_fraud"] = "_mfraud"
    # not sorted by time (0.15 s at 100k rows): the rows are appended in the last row groups whatever their order
    cur.execute(f"CREATE OR REPLACE TEMP TABLE _inc AS {assemble_sql(plan, parts)}")
    read += _definitions(cur)
    return read, summarised, temps


def _definitions(cur: duckdb.DuckDBPyConnection) -> int:
    """Add the user-defined feature columns to _inc (as the full build's `apply_definitions` does); rows read."""
    columns = source_columns(cur)
    read = 0
    for defn in active_definitions(cur):
        name = quote_ident(defn.name)
        source = "_affrows"  # a row-level value reads only the rows themselves
        if defn.aggregate != "value":
            read += _slice(cur, defn.key, _def_span(defn), null_group=False)  # (NULL where the key is missing)
            source = "_sub"
        cur.execute(f"ALTER TABLE _inc ADD COLUMN {name} DOUBLE")
        cur.execute(f"UPDATE _inc SET {name} = v.{name} FROM ({relation_sql(defn, columns, source=source)}) v "
                    f"WHERE _inc.transaction_id = v.transaction_id")
    return read


def _same_shape(cur: duckdb.DuckDBPyConnection) -> bool:
    shape = [tuple(r[:2]) for r in cur.execute("DESCRIBE features").fetchall()]
    return shape == [tuple(r[:2]) for r in cur.execute("DESCRIBE _inc").fetchall()]


def update_features(ws: Workspace, progress: Progress | None = None, who: Actor = SYSTEM,
                    changed: Sequence[str] = (), beside: Callable[[duckdb.DuckDBPyConnection], bool] | None = None,
                    on_rows: Callable[[pa.Table], object] | None = None) -> IncrementalReport:
    """Compute features for the rows without them and recompute the rows whose windows they change, in one write.

    `changed`: ids of rows that already have features but whose arrival changes later rows' windows (a late event
    scored live): they and the rows they reach are recomputed too. Raises PlanChanged (nothing written) when the
    feature set would differ from the stored table; callers then rebuild whole (`build_features`). Call only when
    :func:`can_update` is true or with `changed` rows. `beside`: other work of the load run at the same time in its
    own transaction (see `Workspace.write`): the update leaves one of two cores idle much of its time. `on_rows`:
    called with the rows handed over (the report's `rows`) as soon as they are computed, before they are written,
    so a scorer can start on them (`batch_predict.Ahead`).
    """
    progress = progress or (lambda _f, _m: None)
    began = time.perf_counter()
    delay_days = float(feature_info(ws).get("label_delay_days", DEFAULT_LABEL_DELAY_DAYS))
    progress(0.05, "checking the feature plan")
    plan = plan_features(ws, delay_days)
    temps: list[str] = []
    with ws.memory_capped(FEATURE_MEMORY_LIMIT), \
            ws.write("update_features", who, {"label_delay_days": delay_days, "engine": "incremental"},
                     beside=beside) as cur:
        cur.execute("SET TimeZone = 'UTC'")
        spans = _spans(plan, active_definitions(cur))
        _affected(cur, spans, changed, null_groups=plan.null_groups)
        new_rows = int(cur.execute("SELECT count(*) FROM _new").fetchone()[0])
        affected, first_ts = cur.execute("SELECT count(*), min(ts) FROM _affrows").fetchone()
        read, summarised, temps = _compute(cur, plan, spans, delay_days, progress)
        if not _same_shape(cur):
            raise PlanChanged("the feature set changed since the last full build")
        progress(0.85, f"replacing {affected:,} feature rows")
        rows = None if affected > HAND_OVER_ROWS else cur.sql(
            "SELECT i.*, a.ts FROM _inc i JOIN _affrows a USING (transaction_id)").to_arrow_table()
        if rows is not None and on_rows is not None:
            on_rows(rows)
        # the id range first, as the scores' replace does: where ids grow with time, zone maps skip the older row
        # groups (a probe of every stored id was 0.3-0.5 s at 10M rows); the IN keeps the result exact
        lo, hi = cur.execute("SELECT min(transaction_id), max(transaction_id) FROM _aff").fetchone()
        cur.execute("DELETE FROM features WHERE transaction_id BETWEEN $lo AND $hi "
                    "AND transaction_id IN (SELECT transaction_id FROM _aff)", {"lo": lo, "hi": hi})
        cur.execute("INSERT INTO features SELECT * FROM _inc")
        mark_covered(cur)
        for name in set(_TEMPS) | set(temps):
            cur.execute(f"DROP TABLE IF EXISTS {name}")
    progress(1.0, "features up to date")
    return IncrementalReport(new_rows, int(affected), read, first_ts, time.perf_counter() - began, summarised, rows)
