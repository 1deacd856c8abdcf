"""Point-in-time features of one new event: the batch SQL run over the history its windows reach, plus the event.

Every batch window partitions by a key (customer, merchant, device, IP, card, a user-defined feature's key), so the
new row's values depend only on its own keys' earlier events inside the longest window of each key: the customer's
whole history, the merchant's last 30 days plus the label delay, the shared identifiers' last 7 days, each
user-defined feature's window plus its delay. Those rows and the new one go into a small relation; the very SQL of
:func:`fraudlab.features.build_features` (``base_sql``, ``group_sql``, ``merchant_fraud_sql``, ``assemble_sql``) and
of the Feature lab (``relation_sql``) runs over it, and the new row's result is what a full rebuild would give it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable

import duckdb
import pandas as pd
import pyarrow as pa

from fraudlab.api.online import plan_names
from fraudlab.errors import FraudlabError
from fraudlab.featurelab.defs import FeatureDef, parse_delay, parse_window
from fraudlab.featurelab.sql import relation_sql
from fraudlab.featurelab.store import active_definitions
from fraudlab.features import (
    MERCHANT_WINDOWS,
    SHARED_WINDOWS,
    FeaturePlan,
    assemble_sql,
    base_sql,
    feature_info,
    group_sql,
    merchant_fraud_selects,
    plan_features,
)
from fraudlab.privacy import mask_card_sql
from fraudlab.workspace import Workspace, quote_ident

NEW_ROW = "_live_in"  # the new event, shaped like `transactions`
SUBSET = "_live_sub"  # the history its windows reach, plus the new event
NEW_INPUT = "_live_new_rows"  # the new events typed, handed over as Arrow
HISTORY = "_live_reach"  # the stored rows the windows reach, handed over from memory
LABELS = "_live_fraud_labels"  # label rows of the transactions labelled fraud, handed over from memory


def features_stamp(ws: Workspace) -> str:
    """Changes when the feature set changes (a rebuild with other columns, a user-defined feature added or dropped)."""
    meta = ws.scalar("SELECT string_agg(key || '=' || value, ';' ORDER BY key) FROM feature_meta")
    defs = ws.scalar("SELECT coalesce(max(version), 0) FROM feature_defs")
    return f"{meta}|{defs}"


def _merge_span(spans: dict[str, int | None], key: str, seconds: int | None) -> None:
    """Keep the longest history a key needs (None: all of it)."""
    if key in spans and (spans[key] is None or seconds is None):
        spans[key] = None
    else:
        spans[key] = seconds if key not in spans else max(spans[key], seconds)


@dataclass(frozen=True)
class LivePlan:
    """The batch feature plan of a workspace and how far back each key's history must be read for one event."""

    plan: FeaturePlan
    label_delay_days: float
    definitions: tuple[FeatureDef, ...]
    source_columns: tuple[str, ...]
    columns: tuple[str, ...]  # the features table's columns, transaction_id first
    spans: dict[str, int | None]
    stamp: str


def live_plan(ws: Workspace) -> LivePlan:
    """Plan the live features exactly as the last batch build did; refuses when the features table differs."""
    info = feature_info(ws)
    if not info or not ws.has_table("features"):
        raise FraudlabError("features are not built yet: open the app once or run `python -m fraudlab features`")
    delay_days = float(info.get("label_delay_days", 7.0))
    stamp = features_stamp(ws)
    plan = plan_features(ws, delay_days)
    cur = ws.cursor()
    try:
        definitions = tuple(active_definitions(cur))
    finally:
        cur.close()
    columns = tuple(ws.columns("features"))
    names = plan_names(plan) + [d.name for d in definitions]
    if set(names) != set(columns) - {"transaction_id"}:
        raise FraudlabError("the features table was built from other data or settings than it would be now: "
                            "rebuild features (`python -m fraudlab features`) before live scoring")
    spans: dict[str, int | None] = {}
    if "customer_id" in plan.by_key:
        _merge_span(spans, "customer_id", None)  # history-long baselines and first-seen flags
    if plan.has_merchant:
        _merge_span(spans, "merchant_id", max(MERCHANT_WINDOWS.values()) + plan.label_delay_s)
    for key in plan.shared:
        _merge_span(spans, key, max(SHARED_WINDOWS.values()))
    for defn in definitions:
        if defn.key and defn.aggregate != "value":
            window = parse_window(defn.window)
            _merge_span(spans, defn.key, None if window is None else window + parse_delay(defn.delay))
    return LivePlan(plan, delay_days, definitions, tuple(ws.columns("transactions")), columns, spans, stamp)


def _history_sql(live: LivePlan, rows: list[dict]) -> tuple[str, dict]:
    """SELECT of the earlier events the new rows' windows can reach (any of their keys, within that key's span), and
    the new rows themselves (the relation `_live_in`)."""
    params: dict = {"ids": [r["transaction_id"] for r in rows], "ts_max": max(r["ts"] for r in rows)}
    conditions = []
    for i, (key, span) in enumerate(live.spans.items()):
        keyed = [r for r in rows if r.get(key) is not None]
        if not keyed:
            continue
        params[f"k{i}"] = sorted({r[key] for r in keyed})
        condition = f"{quote_ident(key)} IN (SELECT unnest($k{i}))"
        if span is not None:
            params[f"from{i}"] = min(r["ts"] for r in keyed) - timedelta(seconds=int(span))
            condition += f" AND ts >= $from{i}"
        conditions.append(f"({condition})")
    where = " OR ".join(conditions) or "false"
    return (f"SELECT * FROM transactions WHERE ts <= $ts_max AND transaction_id NOT IN (SELECT unnest($ids)) "
            f"AND ({where}) UNION ALL BY NAME SELECT * FROM {NEW_ROW}"), params


def _keyed(rows: list[dict], params: dict) -> Callable[[str, str | None], str]:
    """A relation of only the rows sharing a new row's value of a key (partitions of other values change nothing
    for the new rows, so they need not be computed); the values go into `params`."""
    def restrict(relation: str, key: str | None) -> str:
        values = sorted({r[key] for r in rows if key is not None and r.get(key) is not None})
        if not values:
            return relation
        name = f"key_{list(rows[0]).index(key)}"
        params[name] = values
        return f"(SELECT * FROM {relation} WHERE {quote_ident(key)} IN (SELECT unnest(${name})))"
    return restrict


def compute(cur: duckdb.DuckDBPyConnection, live: LivePlan, rows: list[dict], new_rows: pa.Table,
            reach: pa.Table | None = None, labels: pa.Table | None = None) -> pd.DataFrame:
    """Feature rows of new events (`rows` as parsed, `new_rows` the same typed as `transactions`, from
    :func:`typed_rows`) in one statement, in the order of `rows`. Each sees the events stored before and the other
    new ones earlier than itself, exactly as a full rebuild would.

    `reach`: the stored rows the new rows' windows reach, when the caller has them (the online history of
    :mod:`fraudlab.api.history`); without it they are read from `transactions`. `labels`: every label row of the
    transactions labelled fraud (from the same cache); without it `labels` is read."""
    if reach is None:
        history, params = _history_sql(live, rows)
    else:
        history = f"SELECT * FROM {HISTORY} UNION ALL BY NAME SELECT * FROM {NEW_ROW}"
        params = {"ids": [r["transaction_id"] for r in rows]}
    registered = {NEW_INPUT: new_rows} | ({HISTORY: reach} if reach is not None else {})
    registered |= {LABELS: labels} if labels is not None else {}
    for name, table in registered.items():
        cur.register(name, table)
    try:
        return _compute(cur, live, rows, history, params, "labels" if labels is None else LABELS)
    finally:
        for name in registered:
            cur.unregister(name)


def _compute(cur: duckdb.DuckDBPyConnection, live: LivePlan, rows: list[dict], history: str,
             params: dict, labels: str) -> pd.DataFrame:
    plan, keyed = live.plan, _keyed(rows, params)
    ctes = [f"{NEW_ROW} AS (SELECT * FROM {NEW_INPUT})",
            f"{SUBSET} AS MATERIALIZED ({history})",
            f"_live_labels AS MATERIALIZED (SELECT * FROM {labels} "
            f"WHERE transaction_id IN (SELECT transaction_id FROM {SUBSET}))",
            f"_base AS MATERIALIZED ({base_sql(live.label_delay_days, SUBSET, '_live_labels')})",
            f"_g_row AS ({group_sql(plan, 'row', '(SELECT * FROM _base WHERE transaction_id IN (SELECT unnest($ids)))')})"]
    parts = {"row": "_g_row"}
    for i, key in enumerate(list(plan.by_key) + list(plan.shared)):
        parts[key] = f"_g{i}"
        ctes.append(f"_g{i} AS ({group_sql(plan, key, keyed('_base', key))})")
    if plan.has_merchant:
        frauds, mfraud = merchant_fraud_selects(plan.label_delay_s)
        ctes += [f"_frauds AS MATERIALIZED ({frauds})", f"_mfraud AS ({mfraud})"]
        parts["merchant_fraud"] = "_mfraud"
    joins = " ".join(f"LEFT JOIN ({relation_sql(d, live.source_columns, keyed(SUBSET, d.key))}) _u{i} "
                     f"USING (transaction_id)" for i, d in enumerate(live.definitions))
    select = ", ".join(quote_ident(c) for c in live.columns)
    frame = cur.sql(f"WITH {', '.join(ctes)} SELECT {select} FROM ({assemble_sql(plan, parts)}) b {joins} "
                    f"WHERE b.transaction_id IN (SELECT unnest($ids))", params=params).to_arrow_table().to_pandas()
    order = {r["transaction_id"]: i for i, r in enumerate(rows)}
    frame = frame.iloc[frame["transaction_id"].map(order).argsort()].reset_index(drop=True)
    if len(frame) != len(rows):
        raise FraudlabError(f"live features: expected {len(rows)} rows, got {len(frame)}")
    for col in plan.categorical:
        frame[col] = frame[col].astype("category")
    return frame


ARROW_TYPES = {"VARCHAR": pa.string(), "DOUBLE": pa.float64(), "FLOAT": pa.float32(), "REAL": pa.float32(),
               "BIGINT": pa.int64(), "INTEGER": pa.int32(), "SMALLINT": pa.int16(), "TINYINT": pa.int8(),
               "BOOLEAN": pa.bool_(), "TIMESTAMP": pa.timestamp("us"), "DATE": pa.date32()}


DIRECT = (pa.string(), pa.float64(), pa.bool_(), pa.timestamp("us"))  # parse_event's values are of these already


def _arrow_column(values: list, arrow_type: pa.DataType) -> pa.Array:
    """Values as one Arrow column of `arrow_type`: built as that type directly when parse_event made them so (no
    cast, which released the GIL once per column: each time the live decider waited to get it back), else cast
    (an integer column refuses 2.5 here; SQL's CAST rounds it)."""
    if arrow_type in DIRECT:
        return pa.array(values, type=arrow_type)
    return pa.array(values).cast(arrow_type)


def arrow_rows(rows: list[dict], column_types: dict[str, str]) -> pa.Table | None:
    """Parsed rows typed as `transactions` stores them, built in Arrow (card numbers are masked by parse_event); None
    when a column has no plain type or a value does not fit its type exactly (then :func:`typed_rows` casts in SQL)."""
    names = list(dict.fromkeys(name for row in rows for name in row))
    if not all(column_types[name].upper() in ARROW_TYPES for name in names):
        return None
    try:
        return pa.table({name: _arrow_column([row.get(name) for row in rows], ARROW_TYPES[column_types[name].upper()])
                         for name in names})
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None  # e.g. 2.5 for an integer column: SQL's CAST rounds it, as before


def typed_rows(cur: duckdb.DuckDBPyConnection, rows: list[dict], column_types: dict[str, str]) -> pa.Table:
    """Parsed rows typed as `transactions` stores them (each value cast to its column's type, card numbers masked as
    at ingest): in Arrow when :func:`arrow_rows` can, else in one statement whatever their number."""
    fast = arrow_rows(rows, column_types)
    if fast is not None:
        return fast
    names = list(dict.fromkeys(name for row in rows for name in row))
    raw = pa.table({f"c{i}": pa.array([row.get(name) for row in rows]) for i, name in enumerate(names)})
    exprs = []
    for i, name in enumerate(names):
        expr = f"CAST(c{i} AS {column_types[name]})"
        exprs.append(f"{mask_card_sql(expr) if name == 'card_id' else expr} AS {quote_ident(name)}")
    cur.register("_live_raw_rows", raw)
    try:
        return cur.sql(f"SELECT {', '.join(exprs)} FROM _live_raw_rows").to_arrow_table()
    finally:
        cur.unregister("_live_raw_rows")


def describe_spans(live: LivePlan) -> str:
    """How much history each key's windows read, as JSON (for the health answer)."""
    return json.dumps({k: ("all" if v is None else f"{v / 86_400:g}d") for k, v in live.spans.items()})
