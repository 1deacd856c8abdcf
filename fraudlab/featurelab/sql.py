"""One user-defined feature as one DuckDB window expression over `transactions`, strictly earlier events only.

Same convention as fraudlab.features: a window is `RANGE ... EXCLUDE GROUP` ordered by ts, so a transaction
never sees itself, anything at the same instant, or anything later; with a delay the window ends at t - delay.
"""
from __future__ import annotations

from fraudlab.featurelab.defs import FeatureDef, clean_expression, parse_delay, parse_window
from fraudlab.workspace import CANONICAL_COLUMNS, quote_ident


def window_clause(key: str, window_s: int | None, delay_s: int) -> str:
    """The strictly-earlier window of the key's events in [t - delay - window, t - delay]."""
    start = "UNBOUNDED PRECEDING" if window_s is None else f"INTERVAL {int(window_s + delay_s)} SECONDS PRECEDING"
    end = f"INTERVAL {int(delay_s)} SECONDS PRECEDING" if delay_s else "CURRENT ROW"
    return f"(PARTITION BY {quote_ident(key)} ORDER BY ts RANGE BETWEEN {start} AND {end} EXCLUDE GROUP)"


def compile_sql(defn: FeatureDef, columns: list[str] | set[str] | None = None) -> str:
    """One DOUBLE-valued SQL expression for the feature (checked against `columns`, default the canonical ones)."""
    usable = set(columns if columns is not None else CANONICAL_COLUMNS)
    value = clean_expression(defn.expression or defn.of, usable) if (defn.expression or defn.of) else None
    if defn.aggregate == "value":
        return f"({value})::DOUBLE"
    where = clean_expression(defn.where, usable) if defn.where else None
    w = window_clause(defn.key, parse_window(defn.window), parse_delay(defn.delay))

    def only(expr: str) -> str:
        """Keep `expr` only on earlier events that match the filter (NULL drops them from any aggregate)."""
        return f"CASE WHEN {where} THEN {expr} END" if where else expr

    agg = defn.aggregate
    if agg == "count":
        sql = f"count({only('1')}) OVER {w}"
    elif agg == "since_last":
        sql = f"epoch(ts) - epoch(max({only('ts')}) OVER {w})"
    elif agg == "distinct":
        sql = f"count(DISTINCT {only(f'({value})')}) OVER {w}"
    elif agg in ("sum", "mean", "std", "min", "max"):
        fn = {"sum": "sum", "mean": "avg", "std": "stddev_samp", "min": "min", "max": "max"}[agg]
        sql = f"{fn}({only(f'({value})::DOUBLE')}) OVER {w}"
        if agg == "sum":
            sql = f"coalesce({sql}, 0)"
    elif agg == "ratio":
        sql = f"({value})::DOUBLE / nullif(avg({only(f'({value})::DOUBLE')}) OVER {w}, 0)"
    else:  # zscore
        mean, std = (f"{fn}({only(f'({value})::DOUBLE')}) OVER {w}" for fn in ("avg", "stddev_samp"))
        sql = f"(({value})::DOUBLE - {mean}) / nullif({std}, 0)"
    return f"CASE WHEN {quote_ident(defn.key)} IS NULL THEN NULL ELSE ({sql})::DOUBLE END"


def relation_sql(defn: FeatureDef, columns: list[str] | set[str] | None = None, source: str = "transactions") -> str:
    """SELECT transaction_id and the feature (column named after it) over `source` (a table or a filtered CTE)."""
    return f"SELECT transaction_id, {compile_sql(defn, columns)} AS {quote_ident(defn.name)} FROM {source}"
