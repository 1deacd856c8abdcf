"""One DuckDB scan of a window: per-period histograms, category counts, nulls and tail sums."""
from __future__ import annotations

from typing import Any

import numpy as np

from fraudlab.drift.columns import ColumnSpec, from_sql
from fraudlab.drift.grids import Grid, fmt
from fraudlab.drift.settings import OTHER
from fraudlab.drift.windows import Window
from fraudlab.errors import FraudlabError
from fraudlab.workspace import Workspace

PERIODS = ("hour", "day", "week")


def _period_expr(period: str) -> str:
    if period not in PERIODS:
        raise FraudlabError(f"period must be one of {', '.join(PERIODS)}")
    return f"date_trunc('{period}', t.ts)"


def scan_of(ws: Workspace, window: Window, specs: list[ColumnSpec], grids: dict[str, Grid],
          cats: dict[str, list[str] | None], period: str) -> dict[str, dict]:
    """One grouped scan per source: per period, histograms / category counts / null counts / sums per column.

    Returns {column: {"periods": [...], "n": [...], "rows": [...], ...}} with per-period arrays.
    """
    out: dict[str, dict] = {}
    where, params = window.where("t")
    by_source: dict[str, list[ColumnSpec]] = {}
    for s in specs:
        by_source.setdefault(s.source, []).append(s)
    for source, cols in by_source.items():
        sel, p = [f"{_period_expr(period)} AS period", "count(*) AS rows_"], dict(params)
        for i, s in enumerate(cols):
            x = s.expr()
            sel.append(f"count({x}) AS n_{i}")
            if s.kind == "numeric":
                g = grids[s.name]
                tx = g.t_sql(x)
                sel += [f"histogram({g.bin_sql(x)}) AS h_{i}", f"sum({x}) AS s_{i}", f"sum({x} * {x}) AS q_{i}",
                        f"sum({x}) FILTER (WHERE {tx} < {fmt(g.lo)}) AS us_{i}",
                        f"sum({x}) FILTER (WHERE {tx} >= {fmt(g.hi)}) AS os_{i}",
                        f"min({x}) AS mn_{i}", f"max({x}) AS mx_{i}"]
            elif s.kind == "categorical":
                keep = cats.get(s.name)
                if keep is None:  # low cardinality: exact counts
                    sel.append(f"histogram({x}) AS h_{i}")
                else:
                    p[f"k_{i}"] = keep
                    sel.append(f"histogram(CASE WHEN {x} IS NULL THEN NULL WHEN list_contains($k_{i}, {x}) "
                               f"THEN {x} ELSE '{OTHER}' END) AS h_{i}")
        sql = (f"SELECT {', '.join(sel)} FROM {from_sql({source})} WHERE {where} "
               f"GROUP BY ALL ORDER BY period")
        rows = ws.arrow(sql, p).to_pylist()
        periods = [r["period"] for r in rows]
        total = [r["rows_"] for r in rows]
        for i, s in enumerate(cols):
            entry: dict[str, Any] = {"periods": periods, "rows": total, "n": [r[f"n_{i}"] for r in rows]}
            if s.kind == "numeric":
                nb = grids[s.name].bins
                hist = np.zeros((len(rows), nb + 2))
                for j, r in enumerate(rows):
                    for k, v in _map(r[f"h_{i}"]).items():
                        hist[j, int(k) + 1] += v
                entry.update(hist=hist, sum=[r[f"s_{i}"] or 0.0 for r in rows], sumsq=[r[f"q_{i}"] or 0.0 for r in rows],
                             under_sum=[r[f"us_{i}"] or 0.0 for r in rows], over_sum=[r[f"os_{i}"] or 0.0 for r in rows],
                             min=[r[f"mn_{i}"] for r in rows], max=[r[f"mx_{i}"] for r in rows])
            elif s.kind == "categorical":
                entry["counts"] = [_map(r[f"h_{i}"]) for r in rows]
            out[s.name] = entry
    return out


def _map(value) -> dict:
    """A DuckDB MAP fetched through Arrow (a list of key/value pairs, or a dict) as a dict."""
    if not value:
        return {}
    if isinstance(value, dict):
        return value
    return {k: v for k, v in value}
