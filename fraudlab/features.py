"""Point-in-time features in DuckDB SQL: every value is computed from strictly earlier events only.

A transaction never sees itself, anything at the same instant, or anything later (windows are
``RANGE ... EXCLUDE GROUP``). Merchant fraud rates count only labels known by the transaction's time
(``label_ts``; when the data has none, ``ts`` plus an assumed label delay). Features whose source column is
absent are skipped; numeric extra columns of the source are used as they are, unless the leakage guard
finds they give the label away.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import duckdb
import pandas as pd

from fraudlab import jobs
from fraudlab.auth.actors import SYSTEM, Actor
from fraudlab.errors import FraudlabError
from fraudlab.featurelab.store import apply_definitions
from fraudlab.jobs import Progress
from fraudlab.labels import fraud_known_sql
from fraudlab.leakage import leakage_check, time_index_columns
from fraudlab.workspace import CANONICAL_COLUMNS, Workspace, quote_ident

DEFAULT_LABEL_DELAY_DAYS = 7.0
CUSTOMER_WINDOWS = {"5m": 300, "1h": 3_600, "24h": 86_400, "7d": 604_800, "30d": 2_592_000}
AVERAGE_WINDOWS = ("24h", "7d", "30d")  # the customer's mean amount over these, and this amount against it
SHARED_WINDOWS = {"24h": 86_400, "7d": 604_800}
MERCHANT_WINDOWS = {"1d": 86_400, "7d": 604_800, "30d": 2_592_000}
SHARED_KEYS = {"device_id": "dev", "ip": "ip", "card_id": "card"}
CATEGORICALS = ("category", "channel", "country", "currency")
META_TABLE = "feature_meta"
COVER_KEY = "features_cover_ingest"  # in `meta`: every row of the loads up to this ingest id has features
FEATURE_MEMORY_LIMIT = "5GB"  # DuckDB spills window sorts to disk beyond this (10M rows: ~7 GB peak RSS)


@dataclass(frozen=True)
class FeatureReport:
    """What build_features did: the feature columns, what it left out and why, and how long it took."""

    rows: int
    numeric: list[str]
    categorical: list[str]
    excluded: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0
    label_delay_days: float = DEFAULT_LABEL_DELAY_DAYS

    @property
    def columns(self) -> list[str]:
        return self.numeric + self.categorical


def _window(partition: str, seconds: int | None) -> str:
    """A strictly-earlier window over `partition`, bounded by `seconds` (None: all history)."""
    start = "UNBOUNDED PRECEDING" if seconds is None else f"INTERVAL {int(seconds)} SECONDS PRECEDING"
    return f"(PARTITION BY {partition} ORDER BY ts RANGE BETWEEN {start} AND CURRENT ROW EXCLUDE GROUP)"


def _customer_features(cols: set[str]) -> list[str]:
    """Velocity, spend-baseline and first-seen features per customer."""
    if "customer_id" not in cols:
        return []
    out = []
    for name, secs in CUSTOMER_WINDOWS.items():
        w = _window("customer_id", secs)
        out += [f"count(*) OVER {w} AS c_cnt_{name}", f"coalesce(sum(amount) OVER {w}, 0) AS c_sum_{name}"]
        if name in AVERAGE_WINDOWS:
            out += [f"avg(amount) OVER {w} AS c_amt_mean_{name}",
                    f"amount / (coalesce(avg(amount) OVER {w}, amount) + 1) AS c_amt_ratio_{name}"]
    hist = _window("customer_id", None)
    out += [
        f"count(*) OVER {hist} AS c_hist_cnt",
        f"epoch(ts) - epoch(max(ts) OVER {hist}) AS c_secs_since_prev",
        f"epoch(ts) - epoch(min(ts) OVER {hist}) AS c_tenure_s",
        f"avg(amount) OVER {hist} AS c_amt_mean",
        f"stddev_samp(amount) OVER {hist} AS c_amt_std",
        f"amount / (avg(amount) OVER {hist} + 1) AS c_amt_ratio",
        f"(amount - avg(amount) OVER {hist}) / (coalesce(stddev_samp(amount) OVER {hist}, 0) + 1) AS c_amt_z",
    ]
    for col, short in (("merchant_id", "merchant"), ("device_id", "device"), ("country", "country")):
        if col in cols:
            out.append(f"CASE WHEN {col} IS NULL THEN NULL ELSE "
                       f"(count(*) OVER {_window(f'customer_id, {col}', None)} = 0)::INTEGER END AS c_new_{short}")
    return out


def _delayed_window(partition: str, seconds: int, delay_s: int) -> str:
    """Earlier events in [t - delay - seconds, t - delay]: the window whose labels have had time to arrive."""
    return (f"(PARTITION BY {partition} ORDER BY ts RANGE BETWEEN INTERVAL {int(seconds + delay_s)} SECONDS PRECEDING "
            f"AND INTERVAL {int(delay_s)} SECONDS PRECEDING EXCLUDE GROUP)")


def _merchant_volume(cols: set[str], delay_s: int) -> list[str]:
    """Per merchant: transactions over each window, and over the same window shifted back by the label delay."""
    if "merchant_id" not in cols:
        return []
    out = []
    for name, secs in MERCHANT_WINDOWS.items():
        out += [f"count(*) OVER {_window('merchant_id', secs)} AS m_cnt_{name}",
                f"count(*) OVER {_delayed_window('merchant_id', secs, delay_s)} AS m_dcnt_{name}"]
    return out


def base_sql(label_delay_days: float, source: str = "transactions", labels: str = "labels") -> str:
    """SELECT of the transactions (or a relation shaped like them, or a temp table of some) with epoch seconds and,
    for frauds, when the fraud label became known (from `labels`, or a temp table holding the labels of those rows)."""
    delay = float(label_delay_days) * 86_400
    return f"""
      SELECT t.*, epoch(t.ts) AS ts_s,
             CASE WHEN l.transaction_id IS NOT NULL THEN
               greatest(epoch(coalesce(l.known, t.ts + to_seconds({delay}))), epoch(t.ts) + 1e-3) END AS fraud_known_s
      FROM {source} t
      LEFT JOIN ({fraud_known_sql(labels)}) l
      USING (transaction_id)"""


def merchant_fraud_sql(delay_s: int) -> str:
    """Frauds known by each transaction's time among the merchant's earlier transactions, per window.

    Labels arrive late, so each window reaches back the label delay further: a fraud f counts for a later
    transaction at time t when label_known_f <= t and ts_f >= t - delay - W, i.e. on the interval
    [label_known_f, ts_f + delay + W] (a running sum of +1 at the start and -1 just after the end). Without the
    shift a 1-day window under a 7-day delay would always be empty.
    """
    frauds, mfraud = merchant_fraud_selects(delay_s)
    return f"CREATE OR REPLACE TEMP TABLE _frauds AS {frauds}; CREATE OR REPLACE TEMP TABLE _mfraud AS {mfraud};"


def merchant_fraud_selects(delay_s: int) -> tuple[str, str]:
    """The two SELECTs of :func:`merchant_fraud_sql`: `_frauds` (from `_base`) and the `_mfraud` pivot."""
    parts = []
    for name, window_s in MERCHANT_WINDOWS.items():
        secs = int(window_s + delay_s)
        parts.append(f"""
        SELECT transaction_id, '{name}' AS w, known FROM (
          SELECT kind, transaction_id,
                 sum(delta) OVER (PARTITION BY merchant_id ORDER BY at_s, kind
                                  ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS known
          FROM (
            SELECT merchant_id, known_s AS at_s, 0 AS kind, 1 AS delta, NULL AS transaction_id FROM _frauds
            WHERE ts_s + {secs} >= known_s
            UNION ALL
            SELECT merchant_id, ts_s AS at_s, 1 AS kind, 0 AS delta, transaction_id FROM _base
            UNION ALL
            SELECT merchant_id, ts_s + {secs} AS at_s, 2 AS kind, -1 AS delta, NULL FROM _frauds
            WHERE ts_s + {secs} >= known_s
          )
        ) WHERE kind = 1""")
    union = " UNION ALL ".join(parts)
    return ("""SELECT merchant_id, ts_s, fraud_known_s AS known_s FROM _base
               WHERE fraud_known_s IS NOT NULL AND merchant_id IS NOT NULL""",
            f"""PIVOT ({union}) ON w IN ({", ".join(repr(n) for n in MERCHANT_WINDOWS)}) USING first(known)::DOUBLE
                GROUP BY transaction_id""")


def customer_velocity(ws: Workspace):
    """Per-customer count and amount over 5 minutes, 1 hour, 24 hours and 7 days before each transaction (Arrow)."""
    select = [s for s in _customer_features({"customer_id"}) if s.startswith(("count(*)", "coalesce(sum"))]
    return ws.arrow(f"SELECT transaction_id, {', '.join(select)} FROM transactions")


def source_columns(ws: Workspace) -> list[str]:
    """Columns of the transactions table that hold at least one value (the canonical schema has them all)."""
    if not ws.has_table("transactions"):
        return []
    cols = ws.columns("transactions")
    counts = ws.df("SELECT " + ", ".join(f"count({quote_ident(c)}) > 0 AS {quote_ident(c)}" for c in cols)
                   + " FROM transactions")
    return [c for c in cols if bool(counts[c].iloc[0])]


def _extra_numeric(ws: Workspace) -> list[str]:
    """Numeric columns of the source beyond the canonical ones (e.g. anonymised V1..V28)."""
    types = ws.df("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'transactions'")
    present = set(source_columns(ws))
    numeric = ("DOUBLE", "FLOAT", "INTEGER", "BIGINT", "SMALLINT", "TINYINT", "HUGEINT", "DECIMAL", "REAL", "UBIGINT")
    return [c for c, t in zip(types["column_name"], types["data_type"])
            if c not in CANONICAL_COLUMNS and c != "ingest_id" and c in present and str(t).upper().startswith(numeric)]


@dataclass(frozen=True)
class FeaturePlan:
    """Which features a workspace supports, as SQL select expressions grouped by the key their windows partition on."""

    row: list[str]  # row-local expressions (no window)
    by_key: dict[str, list[str]]  # partition key -> window expressions over _base
    shared: dict[str, tuple[str, list[str]]]  # key -> (column-name prefix, distinct-customer expressions)
    categorical: list[str]
    excluded: dict[str, str]
    skipped: list[str]
    has_merchant: bool
    label_delay_s: int = int(DEFAULT_LABEL_DELAY_DAYS * 86_400)
    time_index: dict[str, str] = field(default_factory=dict)  # numeric columns that only count time: never features

    @property
    def null_groups(self) -> frozenset[str]:
        """Keys whose missing value is one more window group (the `PARTITION BY` of the customer and merchant windows).

        Shared-key features (`group_sql` keeps only rows with the key) and Feature-lab definitions are NULL for a row
        without the key, so for those keys such rows neither read nor change any other row."""
        return frozenset(self.by_key)


def plan_features(ws: Workspace, label_delay_days: float = DEFAULT_LABEL_DELAY_DAYS) -> FeaturePlan:
    """Decide the feature set from the columns that hold values; leave out time indexes and label leaks."""
    cols = set(source_columns(ws))
    if not {"transaction_id", "ts", "amount"} <= cols or ws.count("transactions") == 0:
        raise FraudlabError("no transactions to build features from: load data first")
    extras = _extra_numeric(ws)
    time_index = time_index_columns(ws, extras)
    excluded = leakage_check(ws, [c for c in extras if c not in time_index])
    excluded.update(time_index)
    extras = [c for c in extras if c not in excluded]
    skipped = [f for f, need in (("customer velocity and baselines", "customer_id"),
                                 ("merchant volume and fraud rate", "merchant_id"),
                                 ("shared device customers", "device_id"), ("shared IP customers", "ip"),
                                 ("shared card customers", "card_id")) if need not in cols]
    categorical = [c for c in CATEGORICALS if c in cols]
    row = ["amount", "ln(amount + 1) AS log_amount", "hour(ts) AS hour", "isodow(ts) AS dow"]
    if {"lat", "lon", "merchant_lat", "merchant_lon"} <= cols:
        row.append("111.2 * sqrt(power(lat - merchant_lat, 2) + power((lon - merchant_lon) * "
                   "cos(radians(lat)), 2)) AS dist_merchant_km")
    row += [quote_ident(c) for c in extras] + categorical
    delay_s = int(float(label_delay_days) * 86_400)
    by_key = {k: v for k, v in (("customer_id", _customer_features(cols)),
                                ("merchant_id", _merchant_volume(cols, delay_s))) if v}
    shared = {}
    if "customer_id" in cols:
        for col, short in SHARED_KEYS.items():
            if col in cols:
                shared[col] = (short, shared_features(col, short))
    return FeaturePlan(row, by_key, shared, categorical, excluded, skipped, "merchant_id" in cols, delay_s,
                       time_index)


def shared_features(col: str, short: str) -> list[str]:
    """Distinct customers seen on one shared key (device, IP, card) over each window before the row."""
    return [f"count(DISTINCT customer_id) OVER {_window(col, secs)} AS {short}_customers_{name}"
            for name, secs in SHARED_WINDOWS.items()]


def _alias(expr: str) -> str:
    return expr.rsplit(" AS ", 1)[-1] if " AS " in expr else expr.strip('"')


def assemble_sql(plan: FeaturePlan, parts: dict[str, str], by_time: bool = False) -> str:
    """The final features SELECT, joining per-group results (`parts`: group -> relation name) in a fixed order.

    `by_time`: rows in time order, as the table is stored, so that the rows a load recomputes (the latest) sit in the
    last row groups: their delete and the checkpoint after it then rewrite those groups, not every one."""
    names = [_alias(e) for e in plan.row]
    for key, exprs in plan.by_key.items():
        names += [f"{parts[key]}.{_alias(e)}" for e in exprs]
    for key, (_short, exprs) in plan.shared.items():
        names += [f"{parts[key]}.{_alias(e)}" for e in exprs]
    if plan.has_merchant:
        names += [f"coalesce({parts['merchant_fraud']}.{quote_ident(n)}, 0) AS m_fraud_{n}, "
                  f"coalesce({parts['merchant_fraud']}.{quote_ident(n)}, 0) / ({parts['merchant_id']}.m_dcnt_{n} + 1.0) "
                  f"AS m_fraud_rate_{n}" for n in MERCHANT_WINDOWS]
    joins = " ".join(f"LEFT JOIN {rel} USING (transaction_id)" for key, rel in parts.items() if key != "row")
    row = parts["row"]
    order = f" ORDER BY {row}.ts, {row}.transaction_id" if by_time else ""
    return f"SELECT {row}.transaction_id, {', '.join(names)} FROM {row} {joins}{order}"


def group_sql(plan: FeaturePlan, group: str, source: str = "_base") -> str:
    """SQL over `_base` (or a relation shaped like it) computing one group of features (row, a partition key, or
    merchant_fraud's pivot)."""
    if group == "row":  # (ts only orders the stored rows: assemble_sql never selects it)
        return f"SELECT transaction_id, ts, {', '.join(plan.row)} FROM {source}"
    if group in plan.by_key:
        return f"SELECT transaction_id, {', '.join(plan.by_key[group])} FROM {source}"
    _short, exprs = plan.shared[group]
    return f"SELECT transaction_id, {', '.join(exprs)} FROM {source} WHERE {group} IS NOT NULL"


def store_features(cur, plan: FeaturePlan, select_sql: str, label_delay_days: float) -> tuple[list[str], list[str]]:
    """Write the features table and its metadata from a SELECT (in time order: see `assemble_sql`); returns
    (numeric, categorical).

    No index on transaction_id: keeping one cost an append about 1.5 s at 10M rows (its commit and checkpoint). Like
    the transactions and scores tables, the time-ordered rows are found by id through DuckDB's zone maps (a few ms
    when ids grow with time; a scan, 0.1-0.4 s at 10M rows, when they are random). A table built before this keeps
    its index until its next full build."""
    cur.execute(f"CREATE OR REPLACE TABLE features AS {select_sql}")
    apply_definitions(cur)  # user-defined features (Feature lab), the same SQL their backfill ran
    names = [r[0] for r in cur.execute("DESCRIBE features").fetchall() if r[0] != "transaction_id"]
    numeric = [n for n in names if n not in plan.categorical]
    meta = {"numeric": numeric, "categorical": plan.categorical, "excluded": plan.excluded,
            "label_delay_days": label_delay_days, "skipped": plan.skipped, "time_index": plan.time_index}
    for key, value in meta.items():
        cur.execute(f"INSERT OR REPLACE INTO {META_TABLE} VALUES (?, ?)", [key, json.dumps(value)])
    mark_covered(cur)
    return numeric, plan.categorical


def mark_covered(cur: duckdb.DuckDBPyConnection) -> None:
    """Note that every loaded row has features now: the next update finds its new rows by load id, not by a join."""
    cur.execute("INSERT OR REPLACE INTO meta SELECT ?, coalesce(max(ingest_id), 0)::VARCHAR FROM transactions",
                [COVER_KEY])


@jobs.as_job('the feature build')
def build_features(ws: Workspace, label_delay_days: float = DEFAULT_LABEL_DELAY_DAYS,
                   progress: Progress | None = None, who: Actor = SYSTEM) -> FeatureReport:
    """(Re)compute the `features` table for every transaction from strictly earlier events; return what was built."""
    progress = progress or (lambda _f, _m: None)
    began = time.perf_counter()
    progress(0.05, "checking source columns for leakage")
    plan = plan_features(ws, label_delay_days)
    progress(0.15, "computing windows in DuckDB")
    with ws.memory_capped(FEATURE_MEMORY_LIMIT), \
            ws.write("build_features", who, {"label_delay_days": label_delay_days, "engine": "duckdb"}) as cur:
        cur.execute("SET TimeZone = 'UTC'")
        cur.execute(f"CREATE OR REPLACE TEMP TABLE _base AS {base_sql(label_delay_days)}")
        parts = {"row": "_g_row"}
        ctes = [f"_g_row AS ({group_sql(plan, 'row')})"]
        for i, key in enumerate(list(plan.by_key) + list(plan.shared)):
            parts[key] = f"_g{i}"
            ctes.append(f"_g{i} AS ({group_sql(plan, key)})")
        if plan.has_merchant:
            cur.execute(merchant_fraud_sql(plan.label_delay_s))
            parts["merchant_fraud"] = "_mfraud"
            progress(0.5, "merchant fraud rates from labels known at the time")
        select = f"WITH {', '.join(ctes)} {assemble_sql(plan, parts, by_time=True)}"
        numeric, categorical = store_features(cur, plan, select, label_delay_days)
        progress(0.9, "saving feature list")
        cur.execute("DROP TABLE IF EXISTS _base; DROP TABLE IF EXISTS _frauds; DROP TABLE IF EXISTS _mfraud")
        from fraudlab.incremental.firsts import build_firsts, flag_columns  # (that package imports this module)
        from fraudlab.incremental.totals import build_totals, drop_totals
        build_firsts(cur, flag_columns({e.rsplit(" AS ", 1)[-1] for e in plan.by_key.get("customer_id", [])}))
        if "customer_id" in plan.by_key:
            build_totals(cur, max(CUSTOMER_WINDOWS.values()))
        else:
            drop_totals(cur)
    progress(1.0, "features ready")
    return FeatureReport(ws.count("features"), numeric, categorical, plan.excluded, plan.skipped,
                         time.perf_counter() - began, label_delay_days)


def feature_info(ws: Workspace) -> dict:
    """The last build's numeric and categorical feature lists, exclusions (with reasons) and skipped groups."""
    if not ws.count(META_TABLE):
        return {}
    rows = ws.df(f"SELECT key, value FROM {META_TABLE}")
    return {k: json.loads(v) for k, v in zip(rows["key"], rows["value"])}


def feature_columns(ws: Workspace) -> list[str]:
    """Names of the model features in the `features` table (numeric first, then categorical)."""
    info = feature_info(ws)
    return list(info.get("numeric", [])) + list(info.get("categorical", []))


def has_features(ws: Workspace) -> bool:
    """True when the features table covers every transaction."""
    return ws.has_table("features") and ws.count("features") == ws.count("transactions") > 0


def feature_rows(ws: Workspace, transaction_ids: list[str], columns: list[str] | None = None) -> pd.DataFrame:
    """Feature rows of a few transactions by id (the single-case path)."""
    columns = columns or feature_columns(ws)
    select = ", ".join(quote_ident(c) for c in columns)
    return categorised(ws, ws.df(f"SELECT transaction_id, {select} FROM features "
                                 "WHERE transaction_id IN (SELECT unnest($ids))", {"ids": list(transaction_ids)}))


def categorised(ws: Workspace, frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with the stored features' categorical columns as pandas categories (as models expect them)."""
    for col in feature_info(ws).get("categorical", []):
        if col in frame:
            frame[col] = frame[col].astype("category")
    return frame


def load_frame(ws: Workspace, where: str = "", params: dict | None = None, columns: list[str] | None = None,
               extra: str = "", join: str = "") -> pd.DataFrame:
    """Feature rows (with ts) as a DataFrame, categoricals as pandas categories; `where` filters on t.* / f.*."""
    columns = columns or feature_columns(ws)
    select = ", ".join(f"f.{quote_ident(c)}" for c in columns)
    return categorised(ws, ws.df(f"SELECT f.transaction_id, t.ts{', ' + extra if extra else ''}, {select} "
                                 f"FROM features f JOIN transactions t USING (transaction_id) {join} "
                                 f"{('WHERE ' + where) if where else ''} ORDER BY t.ts, f.transaction_id",
                                 params or {}))
