"""Drift reports: what moved between a reference window and a current window, how much, since when, what to do.

Everything heavy runs in DuckDB: one scan of a window per source table computes, per day (or week), binned
histograms of every numeric column on a grid frozen from the reference, counts per category, null counts and
tail sums. Window-level tests are then computed from those small arrays, never from the rows:

- numeric: Kolmogorov–Smirnov from the binned CDFs (p-value, asymptotic), Wasserstein distance normalised by the
  reference standard deviation, PSI on reference deciles;
- categorical: chi-squared, Jensen–Shannon distance (natural log, as scipy and Evidently), PSI with an explicit "new category" bucket;
- missing rate and unseen-category rate as signals of their own.

The test is chosen as the common open-source tools do (up to 1,000 rows: KS / chi-squared at p < 0.05; larger:
normalised Wasserstein / Jensen–Shannon at 0.1), with two guards they lack: a drift needs both a significant
p-value (Benjamini–Hochberg across every test of the report) and an effect size above the threshold, so huge
samples do not raise alarms for trivial differences. Thresholds can instead be learned from the spread of the
statistic across reference days (mean + 3σ).

The reference profile (grids, histograms, per-day baselines) is frozen in table ``drift_profiles`` and reused as
long as the reference rows are unchanged. Runs are saved in ``drift_runs``.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial.distance import jensenshannon

from fraudlab.errors import FraudlabError
from fraudlab.ingest import quote_ident
from fraudlab.workspace import Workspace, utcnow

Progress = Callable[[float, str], None]

ID_COLUMNS = ("customer_id", "card_id", "device_id", "ip", "email", "merchant_id")
SKIP_COLUMNS = ("transaction_id", "ts", "ingest_id", "is_fraud", "label_ts")
NUM_BINS = 100
SMALL_SAMPLE = 1_000          # at or below: KS / chi-squared p-value decides (the common default)
ALPHA = 0.05
DISTANCE_THRESHOLD = 0.1      # normalised Wasserstein / Jensen-Shannon (the common default for large samples)
SMALL_EFFECT = 0.05           # minimum effect size that must accompany a small-sample p-value
PSI_WARN, PSI_DRIFT = 0.1, 0.25
MISSING_THRESHOLD = 0.05      # absolute change in the missing rate
UNSEEN_THRESHOLD = 0.01       # share of current rows with categories the reference never had
MAX_CATEGORIES = 200          # more distinct values than this: top-k + "(other)"
TOP_K = 30
GRID_SAMPLE = 200_000     # rows sampled from the reference to place the histogram grids
MIN_PERIOD_ROWS = 30
DOMAIN_SAMPLE = 10_000
DOMAIN_AUC = 0.55
PCA_VARIANCE = 0.65
PERF_DROP = 0.25              # relative drop of weekly PR-AUC / recall that counts as performance drift
LABEL_MIX_THRESHOLD = 0.3       # fraud mix is clustered (compromised merchants, rings): needs a large move
LABEL_MIX_GROWTH = 0.15          # ... and one value taking at least 15 more points of the frauds
FRAUD_RATE_CHANGE = 0.3
DATASET_SHARE = 0.5           # weighted share of drifted columns that makes the whole dataset drifted
PROFILE_TABLE = "drift_profiles"
OTHER, NEW, NULL = "(other)", "(new)", "(null)"

RECOMMEND = {
    "pipeline": "investigate the pipeline: fix the source before using this data (do not retrain on it)",
    "retrain": "retrain on recent data and promote through the promotion guard",
    "watch": "watch: small or unimportant change, re-check with the next run",
}


# ------------------------------------------------------------------------------------------ windows

@dataclass(frozen=True)
class Window:
    """A slice of the transactions: by time [start, end) or by ingest ids."""

    start: datetime | None = None
    end: datetime | None = None
    ingest_ids: tuple[int, ...] = ()

    @classmethod
    def dates(cls, start, end) -> "Window":
        return cls(pd.Timestamp(start).to_pydatetime() if start is not None else None,
                   pd.Timestamp(end).to_pydatetime() if end is not None else None)

    @classmethod
    def ingests(cls, ids) -> "Window":
        return cls(ingest_ids=tuple(int(i) for i in ids))

    def where(self, alias: str = "t") -> tuple[str, dict]:
        """SQL condition on the transactions alias and its bound parameters."""
        if self.ingest_ids:
            return f"{alias}.ingest_id IN (SELECT unnest($w_ids))", {"w_ids": list(self.ingest_ids)}
        parts, params = [], {}
        if self.start is not None:
            parts.append(f"{alias}.ts >= $w_start")
            params["w_start"] = self.start
        if self.end is not None:
            parts.append(f"{alias}.ts < $w_end")
            params["w_end"] = self.end
        return (" AND ".join(parts) or "TRUE"), params

    @property
    def label(self) -> str:
        if self.ingest_ids:
            return "ingests " + ", ".join(map(str, self.ingest_ids))
        lo = f"{self.start:%Y-%m-%d %H:%M}" if self.start else "start"
        hi = f"{self.end:%Y-%m-%d %H:%M}" if self.end else "end"
        return f"{lo} → {hi}"

    def to_dict(self) -> dict:
        return {"start": self.start.isoformat() if self.start else None,
                "end": self.end.isoformat() if self.end else None, "ingest_ids": list(self.ingest_ids)}

    @classmethod
    def from_dict(cls, d: dict) -> "Window":
        return cls(datetime.fromisoformat(d["start"]) if d.get("start") else None,
                   datetime.fromisoformat(d["end"]) if d.get("end") else None, tuple(d.get("ingest_ids") or ()))


def split_windows(ws: Workspace, share: float = 0.5) -> tuple[Window, Window]:
    """Default windows: the first `share` of the data's time span as reference, the rest as current."""
    lo, hi = ws.df("SELECT min(ts) AS lo, max(ts) AS hi FROM transactions").iloc[0]
    if pd.isna(lo):
        raise FraudlabError("no transactions yet: load data before a drift report")
    mid = (lo + (hi - lo) * share).floor("D") if hi - lo > pd.Timedelta(days=2) else lo + (hi - lo) * share
    return Window.dates(lo, mid), Window.dates(mid, hi + pd.Timedelta(seconds=1))


# ------------------------------------------------------------------------------------------ columns

@dataclass(frozen=True)
class ColumnSpec:
    """A monitored column: where it lives, how it is treated and the SQL expression that reads it."""

    name: str
    source: str  # transactions | features | scores
    kind: str    # numeric | categorical | id

    @property
    def alias(self) -> str:
        return {"transactions": "t", "features": "f", "scores": "s"}[self.source]

    def expr(self) -> str:
        col = f"{self.alias}.{quote_ident(self.name if self.source != 'scores' else 'score')}"
        if self.kind == "categorical":
            return f"CAST({col} AS VARCHAR)"
        if self.kind == "numeric":
            return f"TRY_CAST({col} AS DOUBLE)"
        return col


def _column_types(ws: Workspace, table: str) -> dict[str, str]:
    frame = ws.df("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? "
                  "ORDER BY ordinal_position", [table])
    return dict(zip(frame["column_name"], frame["data_type"]))


def _kind_of(dtype: str) -> str | None:
    d = dtype.upper()
    if any(k in d for k in ("INT", "DOUBLE", "FLOAT", "DECIMAL", "REAL", "NUMERIC")):
        return "numeric"
    if d in ("VARCHAR", "BOOLEAN") or d.startswith("VARCHAR"):
        return "categorical"
    return None


def monitored_columns(ws: Workspace, overrides: dict[str, str] | None = None, features: bool = True,
                      scores: bool = True) -> list[ColumnSpec]:
    """Columns a report monitors: canonical and extra transaction columns, model features, the score.

    `overrides` maps a column name to 'numeric', 'categorical', 'id' or 'skip' (a user's type correction).
    """
    overrides = overrides or {}
    specs: list[ColumnSpec] = []
    seen: set[str] = set()
    for name, dtype in _column_types(ws, "transactions").items():
        if name in SKIP_COLUMNS:
            continue
        kind = "id" if name in ID_COLUMNS else _kind_of(dtype)
        kind = overrides.get(name, kind)
        if kind and kind != "skip":
            specs.append(ColumnSpec(name, "transactions", kind))
            seen.add(name)
    if features and ws.has_table("features"):
        try:
            from fraudlab.features import feature_info
            info = feature_info(ws)
        except Exception:  # features module absent or meta missing: monitor the raw columns only
            info = {}
        present = set(ws.columns("features"))
        for name in info.get("numeric", []):
            if name in present and name not in seen:
                kind = overrides.get(name, "numeric")
                if kind != "skip":
                    specs.append(ColumnSpec(name, "features", kind))
                    seen.add(name)
    if scores and ws.has_table("scores") and ws.scalar("SELECT count(*) FROM scores") and "score" not in seen:
        if overrides.get("score") != "skip":
            specs.append(ColumnSpec("score", "scores", "numeric"))
    return specs


def _from_sql(sources: set[str]) -> str:
    sql = "transactions t"
    if "features" in sources:
        sql += " JOIN features f USING (transaction_id)"
    if "scores" in sources:
        sql += " JOIN scores s USING (transaction_id)"
    return sql


# ------------------------------------------------------------------------------------------ grids

def _fmt(x: float) -> str:
    return repr(float(x))


@dataclass
class Grid:
    """Equal-width bins on the (optionally asinh-transformed) reference core [p0.5, p99.5]."""

    lo: float
    hi: float
    transform: str  # identity | asinh
    bins: int = NUM_BINS

    @property
    def width(self) -> float:
        w = (self.hi - self.lo) / self.bins
        return w if w > 0 else 1.0

    def t_sql(self, x: str) -> str:
        return f"asinh({x})" if self.transform == "asinh" else x

    def bin_sql(self, x: str) -> str:
        """Bin index in [-1, bins]: -1 below the grid, `bins` above it (shifted by one when stored)."""
        return (f"least(greatest(floor(({self.t_sql(x)} - {_fmt(self.lo)}) * {_fmt(1.0 / self.width)})::BIGINT, -1), "
                f"{self.bins})")

    def centres(self) -> np.ndarray:
        c = self.lo + (np.arange(self.bins) + 0.5) * self.width
        return np.sinh(c) if self.transform == "asinh" else c

    def inverse(self, v: np.ndarray) -> np.ndarray:
        return np.sinh(v) if self.transform == "asinh" else v


def _grid_from_quantiles(p_lo: float, p50: float, p_hi: float, vmin: float, vmax: float) -> Grid:
    skewed = (p_hi - p50) > 5 * max(p50 - p_lo, 1e-12) or (p50 - p_lo) > 5 * max(p_hi - p50, 1e-12)
    transform = "asinh" if skewed and (abs(p_hi) > 10 or abs(p_lo) > 10) else "identity"
    f = np.arcsinh if transform == "asinh" else (lambda v: v)
    lo, hi = float(f(p_lo)), float(f(p_hi))
    if not hi > lo:
        lo, hi = float(f(vmin)), float(f(vmax))
    if not hi > lo:  # constant core: one bin around the value
        lo, hi = lo - 0.5, lo + 0.5
    return Grid(lo, hi, transform)


# ------------------------------------------------------------------------------------------ scans

PERIODS = ("hour", "day", "week")


def _period_expr(period: str) -> str:
    if period not in PERIODS:
        raise FraudlabError(f"period must be one of {', '.join(PERIODS)}")
    return f"date_trunc('{period}', t.ts)"


def _scan(ws: Workspace, window: Window, specs: list[ColumnSpec], grids: dict[str, Grid],
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
                        f"sum({x}) FILTER (WHERE {tx} < {_fmt(g.lo)}) AS us_{i}",
                        f"sum({x}) FILTER (WHERE {tx} >= {_fmt(g.hi)}) AS os_{i}",
                        f"min({x}) AS mn_{i}", f"max({x}) AS mx_{i}"]
            elif s.kind == "categorical":
                keep = cats.get(s.name)
                if keep is None:  # low cardinality: exact counts
                    sel.append(f"histogram({x}) AS h_{i}")
                else:
                    p[f"k_{i}"] = keep
                    sel.append(f"histogram(CASE WHEN {x} IS NULL THEN NULL WHEN list_contains($k_{i}, {x}) "
                               f"THEN {x} ELSE '{OTHER}' END) AS h_{i}")
        sql = (f"SELECT {', '.join(sel)} FROM {_from_sql({source})} WHERE {where} "
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


# ------------------------------------------------------------------------------------------ profile

@dataclass
class ReferenceProfile:
    """The frozen reference: grids, category sets, per-period histograms; reports compare against it."""

    window: Window
    columns: list[ColumnSpec]
    period: str
    grids: dict[str, Grid]
    categories: dict[str, list[str] | None]   # None: every category kept; list: top-k kept, rest "(other)"
    data: dict[str, dict]
    fingerprint: str
    created_at: datetime = field(default_factory=utcnow)
    seconds: float = 0.0

    def to_json(self) -> str:
        def enc(v):
            if isinstance(v, np.ndarray):
                return v.tolist()
            if isinstance(v, (datetime, pd.Timestamp)):
                return pd.Timestamp(v).isoformat()
            raise TypeError(type(v))
        return json.dumps({"window": self.window.to_dict(), "columns": [asdict(c) for c in self.columns],
                           "period": self.period, "grids": {k: asdict(g) for k, g in self.grids.items()},
                           "categories": self.categories, "data": self.data, "fingerprint": self.fingerprint,
                           "created_at": self.created_at.isoformat(), "seconds": self.seconds}, default=enc)

    @classmethod
    def from_json(cls, text: str) -> "ReferenceProfile":
        d = json.loads(text)
        data = d["data"]
        for entry in data.values():
            entry["periods"] = [pd.Timestamp(p).to_pydatetime() for p in entry["periods"]]
            if "hist" in entry:
                entry["hist"] = np.asarray(entry["hist"], dtype=float).reshape(len(entry["periods"]), -1)
        return cls(Window.from_dict(d["window"]), [ColumnSpec(**c) for c in d["columns"]], d["period"],
                   {k: Grid(**g) for k, g in d["grids"].items()}, d["categories"], data, d["fingerprint"],
                   datetime.fromisoformat(d["created_at"]), d.get("seconds", 0.0))


def ensure_tables(ws: Workspace) -> None:
    """Create the reference-profile table (this module owns it and drift_runs)."""
    if not ws.has_table(PROFILE_TABLE):
        with ws.write() as cur:
            cur.execute(f"""CREATE TABLE IF NOT EXISTS {PROFILE_TABLE} (
                profile_key VARCHAR, created_at TIMESTAMP, reference VARCHAR, fingerprint VARCHAR, profile VARCHAR)""")


def _fingerprint(ws: Workspace, window: Window, specs: list[ColumnSpec]) -> str:
    """Cheap identity of the reference rows: counts and max ingest id per source (a rescan of ts only)."""
    where, params = window.where("t")
    parts = [ws.scalar(f"SELECT count(*) || ':' || coalesce(max(ingest_id), 0) FROM transactions t WHERE {where}", params)]
    for source in sorted({s.source for s in specs} - {"transactions"}):
        extra = " || ':' || coalesce(max(s.scored_at)::VARCHAR, '')" if source == "scores" else ""
        parts.append(ws.scalar(f"SELECT count(*){extra} FROM {_from_sql({source})} WHERE {where}", params))
    return ":".join(map(str, parts))


def _profile_key(window: Window, specs: list[ColumnSpec], period: str) -> str:
    text = json.dumps([window.to_dict(), [asdict(s) for s in specs], period], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _choose_period(ws: Workspace, window: Window) -> str:
    where, params = window.where("t")
    span = ws.scalar(f"SELECT epoch(max(ts)) - epoch(min(ts)) FROM transactions t WHERE {where}", params) or 0
    if span > 150 * 86_400:
        return "week"
    return "hour" if span < 6 * 86_400 else "day"


def fit_reference(ws: Workspace, window: Window, specs: list[ColumnSpec] | None = None, period: str | None = None,
                  progress: Progress | None = None) -> ReferenceProfile:
    """Scan the reference window once: grids from approximate quantiles, then per-period histograms."""
    began = time.perf_counter()
    progress = progress or (lambda f, m: None)
    specs = specs if specs is not None else monitored_columns(ws)
    period = period or _choose_period(ws, window)
    where, params = window.where("t")
    grids: dict[str, Grid] = {}
    cats: dict[str, list[str] | None] = {}
    progress(0.05, "reference quantiles")
    for source in sorted({s.source for s in specs}):
        cols = [s for s in specs if s.source == source and s.kind in ("numeric", "categorical")]
        nums = [s for s in cols if s.kind == "numeric"]
        if nums:
            # grid placement only needs rough quantiles: exact ones on a reservoir sample (cheaper than t-digests)
            sel = ", ".join(f"{s.expr()} AS {quote_ident(s.name)}" for s in nums)
            sample = ws.arrow(f"SELECT * FROM (SELECT {sel} FROM {_from_sql({source})} WHERE {where}) "
                              f"USING SAMPLE reservoir({GRID_SAMPLE} ROWS) REPEATABLE (7)", params)
            extremes = ws.arrow(f"SELECT {', '.join(f'min({s.expr()}) AS mn_{i}, max({s.expr()}) AS mx_{i}' for i, s in enumerate(nums))} "
                                f"FROM {_from_sql({source})} WHERE {where}", params).to_pylist()[0]
            for i, s in enumerate(nums):
                v = sample.column(s.name).to_numpy(zero_copy_only=False).astype(float)
                v = v[np.isfinite(v)]
                if not len(v) or extremes[f"mn_{i}"] is None:
                    grids[s.name] = Grid(-0.5, 0.5, "identity")
                    continue
                q = np.quantile(v, [0.005, 0.5, 0.995])
                grids[s.name] = _grid_from_quantiles(q[0], q[1], q[2], extremes[f"mn_{i}"], extremes[f"mx_{i}"])
        cat_cols = [s for s in cols if s.kind == "categorical"]
        if cat_cols:
            row = ws.arrow(f"SELECT {', '.join(f'approx_count_distinct({s.expr()}) AS d_{i}' for i, s in enumerate(cat_cols))} "
                           f"FROM {_from_sql({source})} WHERE {where}", params).to_pylist()[0]
            for i, s in enumerate(cat_cols):
                if (row[f"d_{i}"] or 0) <= MAX_CATEGORIES:
                    cats[s.name] = None
                else:
                    top = ws.arrow(f"SELECT {s.expr()} AS v, count(*) AS c FROM {_from_sql({source})} WHERE {where} "
                                   f"AND {s.expr()} IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {TOP_K}", params)
                    cats[s.name] = top.column("v").to_pylist()
    progress(0.4, "reference histograms")
    data = _scan(ws, window, specs, grids, cats, period)
    fp = _fingerprint(ws, window, specs)
    return ReferenceProfile(window, specs, period, grids, cats, data, fp, seconds=time.perf_counter() - began)


def reference_profile(ws: Workspace, window: Window, specs: list[ColumnSpec] | None = None,
                      progress: Progress | None = None, save: bool = True) -> ReferenceProfile:
    """The frozen profile of this reference window if its rows are unchanged, else a fresh one (saved)."""
    specs = specs if specs is not None else monitored_columns(ws)
    ensure_tables(ws)
    period = _choose_period(ws, window)
    key = _profile_key(window, specs, period)
    fp = _fingerprint(ws, window, specs)
    row = ws.df(f"SELECT profile FROM {PROFILE_TABLE} WHERE profile_key = ? AND fingerprint = ? "
                "ORDER BY created_at DESC LIMIT 1", [key, fp])
    if not row.empty:
        return ReferenceProfile.from_json(row["profile"].iloc[0])
    profile = fit_reference(ws, window, specs, period, progress)
    if save:
        with ws.write("drift reference frozen", details={"reference": window.label, "columns": len(specs)}) as cur:
            cur.execute(f"DELETE FROM {PROFILE_TABLE} WHERE profile_key = ?", [key])
            cur.execute(f"INSERT INTO {PROFILE_TABLE} VALUES (?, ?, ?, ?, ?)",
                        [key, profile.created_at, json.dumps(window.to_dict()), profile.fingerprint, profile.to_json()])
    return profile


# ------------------------------------------------------------------------------------------ statistics

def _support(grid: Grid, hist: np.ndarray, under_sum: float, over_sum: float, lo_fallback: float,
             hi_fallback: float) -> tuple[np.ndarray, np.ndarray]:
    """Discrete support points (bin centres, tail means) and their masses for a binned distribution."""
    values = np.concatenate([[under_sum / hist[0] if hist[0] else lo_fallback], grid.centres(),
                             [over_sum / hist[-1] if hist[-1] else hi_fallback]])
    return values, hist


def _w1(u: np.ndarray, uw: np.ndarray, v: np.ndarray, vw: np.ndarray) -> float:
    """Wasserstein-1 distance between two weighted point sets (the CDF-difference integral, as scipy computes it)."""
    allv = np.sort(np.concatenate([u, v]), kind="mergesort")
    deltas = np.diff(allv)
    ou, ov = np.argsort(u, kind="mergesort"), np.argsort(v, kind="mergesort")
    cu = np.concatenate([[0.0], np.cumsum(uw[ou])]) / uw.sum()
    cv = np.concatenate([[0.0], np.cumsum(vw[ov])]) / vw.sum()
    fu = cu[np.searchsorted(u[ou], allv[:-1], side="right")]
    fv = cv[np.searchsorted(v[ov], allv[:-1], side="right")]
    return float(np.sum(np.abs(fu - fv) * deltas))


def numeric_stats(grid: Grid, ref: dict, cur: dict, ref_std: float, light: bool = False) -> dict:
    """KS (binned CDFs) with p-value, normalised Wasserstein and decile PSI from two binned distributions.

    light=True computes the normalised Wasserstein distance only (the per-period timeline).
    """
    r, c = ref["hist"], cur["hist"]
    n, m = r.sum(), c.sum()
    if n == 0 or m == 0:
        return {}
    lo_f, hi_f = grid.inverse(np.array([grid.lo, grid.hi]))
    rv, rw = _support(grid, r, ref["under_sum"], ref["over_sum"], lo_f, hi_f)
    cv, cw = _support(grid, c, cur["under_sum"], cur["over_sum"], lo_f, hi_f)
    wd = _w1(rv, rw, cv, cw)
    scale = ref_std if ref_std and ref_std > 0 else (abs(ref["sum"] / n) if ref["sum"] else 1.0)
    if light:
        return {"wasserstein_norm": wd / scale}
    fr, fc = np.cumsum(r) / n, np.cumsum(c) / m
    ks = float(np.max(np.abs(fr - fc)))
    en = n * m / (n + m)
    ks_p = float(stats.kstwobign.sf(ks * math.sqrt(en))) if ks > 0 else 1.0
    return {"ks": ks, "ks_p": ks_p, "wasserstein": wd, "wasserstein_norm": wd / scale, "psi": _decile_psi(r, c)}


def _js_only(ref_counts: dict, cur_counts: dict) -> float:
    """Jensen-Shannon distance (natural log, as scipy's default) of two count dicts, new categories apart."""
    keys = list(ref_counts)
    r = np.array([ref_counts[k] for k in keys] + [0.0], dtype=float)
    c = np.array([cur_counts.get(k, 0) for k in keys] + [sum(v for k, v in cur_counts.items() if k not in ref_counts)],
                 dtype=float)
    if r.sum() == 0 or c.sum() == 0:
        return 0.0
    p, q = r / r.sum(), c / c.sum()
    mix = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = lambda a: np.nansum(np.where(a > 0, a * np.log(a / mix), 0.0))  # noqa: E731
        return float(math.sqrt(max((kl(p) + kl(q)) / 2, 0.0)))


def _decile_psi(r: np.ndarray, c: np.ndarray, eps: float = 1e-4) -> float:
    """PSI on (approximately) equal-mass reference bins built by merging the fine bins at reference deciles."""
    before = np.concatenate([[0.0], np.cumsum(r)[:-1]]) / r.sum()
    group = np.minimum((before * 10).astype(int), 9)
    rg = np.bincount(group, weights=r, minlength=10) / r.sum()
    cg = np.bincount(group, weights=c, minlength=10) / c.sum()
    keep = (rg > 0) | (cg > 0)
    rg, cg = np.maximum(rg[keep], eps), np.maximum(cg[keep], eps)
    return float(np.sum((cg - rg) * np.log(cg / rg)))


def categorical_stats(ref_counts: dict, cur_counts: dict, complete: bool) -> dict:
    """Chi-squared, Jensen-Shannon distance (natural log) and PSI (with a "new category" bucket) on category counts."""
    keys = list(ref_counts)
    new = {k: v for k, v in cur_counts.items() if k not in ref_counts}
    r = np.array([ref_counts[k] for k in keys] + [0.0], dtype=float)
    c = np.array([cur_counts.get(k, 0) for k in keys] + [sum(new.values())], dtype=float)
    n, m = r.sum(), c.sum()
    if n == 0 or m == 0:
        return {}
    keep = (r + c) > 0
    table = np.vstack([r[keep], c[keep]])
    if table.shape[1] > 1:
        chi2, p, _, _ = stats.chi2_contingency(table, correction=False)
    else:
        chi2, p = 0.0, 1.0
    pr, pc = r / n, c / m
    js = float(jensenshannon(pr, pc)) if keep.sum() > 1 else 0.0
    rr, cc = np.maximum(pr, 1e-4), np.maximum(pc, 1e-4)
    psi = float(np.sum((cc - rr) * np.log(cc / rr)))
    # a category that was common (>= 1% and >= 20 expected rows) and is now absent
    vanished = [k for k, share in zip(keys, pr[:-1])
                if share >= 0.01 and share * m >= 20 and cur_counts.get(k, 0) == 0 and k != OTHER]
    return {"chi2": float(chi2), "chi2_p": float(p), "jensenshannon": 0.0 if math.isnan(js) else js, "psi": psi,
            "unseen_rate": (sum(new.values()) / m) if complete else None, "unseen": sorted(new, key=new.get, reverse=True)[:5],
            "vanished": vanished}


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (NaN entries left out and kept NaN)."""
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    ok = ~np.isnan(p)
    if not ok.any():
        return out
    q = p[ok]
    order = np.argsort(q)
    ranked = q[order] * len(q) / np.arange(1, len(q) + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    adj = np.empty_like(q)
    adj[order] = np.minimum(ranked, 1.0)
    out[ok] = adj
    return out


def _two_proportion_p(x1: float, n1: float, x2: float, n2: float) -> float:
    if n1 == 0 or n2 == 0:
        return 1.0
    p = (x1 + x2) / (n1 + n2)
    se = math.sqrt(max(p * (1 - p) * (1 / n1 + 1 / n2), 1e-300))
    z = abs(x1 / n1 - x2 / n2) / se
    return float(2 * stats.norm.sf(z))


# ------------------------------------------------------------------------------------------ aggregation helpers

def _total(entry: dict, kind: str, mask: np.ndarray | None = None) -> dict:
    """Sum a column's per-period arrays (optionally only the masked periods) into one window aggregate."""
    idx = np.arange(len(entry["periods"])) if mask is None else np.flatnonzero(mask)
    out = {"n": float(np.sum(np.asarray(entry["n"], float)[idx])) if len(idx) else 0.0,
           "rows": float(np.sum(np.asarray(entry["rows"], float)[idx])) if len(idx) else 0.0}
    if kind == "numeric":
        h = entry["hist"]
        out["hist"] = h[idx].sum(axis=0) if len(idx) else np.zeros(h.shape[1] if h.ndim == 2 else NUM_BINS + 2)
        for k in ("sum", "sumsq", "under_sum", "over_sum"):
            out[k] = float(np.sum(np.asarray(entry[k], float)[idx])) if len(idx) else 0.0
        mins = [entry["min"][i] for i in idx if entry["min"][i] is not None]
        maxs = [entry["max"][i] for i in idx if entry["max"][i] is not None]
        out["min"], out["max"] = (min(mins) if mins else None), (max(maxs) if maxs else None)
    elif kind == "categorical":
        counts: dict[str, float] = {}
        for i in idx:
            for k, v in entry["counts"][i].items():
                counts[k] = counts.get(k, 0) + v
        out["counts"] = counts
    return out


def _mean_std(t: dict) -> tuple[float | None, float | None]:
    if not t["n"]:
        return None, None
    mean = t["sum"] / t["n"]
    var = max(t["sumsq"] / t["n"] - mean * mean, 0.0)
    return mean, math.sqrt(var)


def _entry_for(entry: dict, kind: str, i: int) -> dict:
    """One period of a column's per-period arrays, in the shape of a window aggregate."""
    out = {"n": float(entry["n"][i] or 0), "rows": float(entry["rows"][i] or 0)}
    if kind == "numeric":
        out["hist"] = entry["hist"][i]
        for k in ("sum", "sumsq", "under_sum", "over_sum", "min", "max"):
            out[k] = entry[k][i]
    elif kind == "categorical":
        out["counts"] = entry["counts"][i]
    return out


def _empty_entry(kind: str, grid: Grid | None) -> dict:
    e: dict[str, Any] = {"periods": [], "rows": [], "n": []}
    if kind == "numeric":
        e.update(hist=np.zeros((0, (grid.bins if grid else NUM_BINS) + 2)), sum=[], sumsq=[], under_sum=[],
                 over_sum=[], min=[], max=[])
    elif kind == "categorical":
        e["counts"] = []
    return e


# ------------------------------------------------------------------------------------------ per-column tests

def _period_stat(spec: ColumnSpec, grid: Grid | None, ref_total: dict, part: dict, ref_std: float,
                 complete: bool) -> float | None:
    """The column's effect statistic for one period against the whole reference (None if too few rows)."""
    if part["n"] < MIN_PERIOD_ROWS or ref_total["n"] == 0:
        return None
    if spec.kind == "numeric":
        return numeric_stats(grid, ref_total, part, ref_std, light=True).get("wasserstein_norm")
    if spec.kind == "categorical":
        return _js_only(ref_total["counts"], part["counts"])
    return None


def _column_row(spec: ColumnSpec, profile: ReferenceProfile, ref: dict, cur: dict) -> dict:
    """Window-level statistics of one column (before the multiple-testing correction decides)."""
    grid = profile.grids.get(spec.name)
    row: dict[str, Any] = {"column": spec.name, "source": spec.source, "kind": spec.kind,
                           "ref_rows": int(ref["rows"]), "cur_rows": int(cur["rows"]),
                           "missing_ref": (1 - ref["n"] / ref["rows"]) if ref["rows"] else None,
                           "missing_cur": (1 - cur["n"] / cur["rows"]) if cur["rows"] else None,
                           "test": None, "statistic": None, "threshold": None, "p_value": None, "psi": None,
                           "unseen_rate": None, "detail": ""}
    row["missing_p"] = _two_proportion_p(ref["rows"] - ref["n"], ref["rows"], cur["rows"] - cur["n"], cur["rows"])
    small = min(ref["n"], cur["n"]) <= SMALL_SAMPLE
    if spec.kind == "id":
        row["test"], row["status"] = "missing rate only", "ok"
        return row
    if cur["rows"] == 0 or ref["rows"] == 0:
        row["status"] = "empty window"
        return row
    if ref["n"] == 0 and cur["n"] == 0:
        row["status"] = "all null"
        return row
    if ref["n"] == 0 or cur["n"] == 0:
        row["status"] = "all null in " + ("reference" if ref["n"] == 0 else "current")
        row["p_value"], row["effect"] = 0.0, 1.0
        return row
    if spec.kind == "numeric":
        if ref["min"] == ref["max"] == cur["min"] == cur["max"]:
            row["status"], row["detail"] = "constant", f"always {ref['min']:g}"
            return row
        mean, std = _mean_std(ref)
        s = numeric_stats(grid, ref, cur, std)
        cmean, _ = _mean_std(cur)
        row.update(psi=s["psi"], ks=s["ks"], wasserstein_norm=s["wasserstein_norm"], ref_mean=mean, cur_mean=cmean)
        row["p_value"], row["effect"] = s["ks_p"], s["wasserstein_norm"]
        if small:
            row["test"], row["statistic"], row["threshold"] = "ks", s["ks_p"], ALPHA
        else:
            row["test"], row["statistic"], row["threshold"] = "wasserstein_norm", s["wasserstein_norm"], DISTANCE_THRESHOLD
    else:
        complete = profile.categories.get(spec.name) is None
        if len(ref["counts"]) == 1 and set(cur["counts"]) == set(ref["counts"]):
            row["status"], row["detail"] = "constant", f"always {next(iter(ref['counts']))}"
            return row
        s = categorical_stats(ref["counts"], cur["counts"], complete)
        row.update(psi=s["psi"], jensenshannon=s["jensenshannon"], unseen_rate=s["unseen_rate"])
        row["p_value"], row["effect"] = s["chi2_p"], s["jensenshannon"]
        row["unseen"], row["vanished"] = s["unseen"], s["vanished"]
        if small:
            row["test"], row["statistic"], row["threshold"] = "chi2", s["chi2_p"], ALPHA
        else:
            row["test"], row["statistic"], row["threshold"] = "jensenshannon", s["jensenshannon"], DISTANCE_THRESHOLD
        if not complete:
            row["detail"] = f"high cardinality: top {TOP_K} + {OTHER}"
    row["small_sample"] = small
    row["status"] = None  # decided after the correction
    return row


def _vanished(ref_total: dict, cur_entry: dict) -> tuple[list[str], Any]:
    """Common reference categories (>= 1%) absent from the last periods of the current window, and since when.

    The absent stretch must hold at least 20 expected rows of the category, so rare values do not count.
    """
    counts, rows = cur_entry.get("counts") or [], cur_entry.get("rows") or []
    if not ref_total.get("n") or not counts:
        return [], None
    gone, since = [], None
    for key, c in ref_total["counts"].items():
        share = c / ref_total["n"]
        if share < 0.01 or key == OTHER:
            continue
        expected, start = 0.0, None
        for i in range(len(counts) - 1, -1, -1):
            if counts[i].get(key, 0):
                break
            expected += share * (rows[i] or 0)
            start = i
        if start is not None and expected >= 20:
            gone.append(key)
            since = cur_entry["periods"][start] if since is None else min(since, cur_entry["periods"][start])
    return gone, since


def _decide(rows: list[dict], chunk_thresholds: dict[str, float], threshold_mode: str) -> None:
    """Benjamini-Hochberg across every p-value of the report, then effect size AND significance decide."""
    pvals = []
    for r in rows:
        pvals.append(r["p_value"] if r.get("status") is None else np.nan)
        pvals.append(r["missing_p"])
    adj = benjamini_hochberg(np.array([np.nan if v is None else v for v in pvals], dtype=float))
    for i, r in enumerate(rows):
        r["p_adj"] = None if np.isnan(adj[2 * i]) else float(adj[2 * i])
        r["missing_p_adj"] = None if np.isnan(adj[2 * i + 1]) else float(adj[2 * i + 1])
        if threshold_mode == "reference_chunks" and r["column"] in chunk_thresholds and not r.get("small_sample"):
            r["threshold"] = max(chunk_thresholds[r["column"]], 0.01)
        if r.get("status") is None:
            significant = r["p_adj"] is not None and r["p_adj"] < ALPHA
            effect = r.get("effect") or 0.0
            psi = r.get("psi") or 0.0
            if r.get("small_sample"):
                drift = significant and effect >= SMALL_EFFECT
            else:
                drift = significant and effect >= r["threshold"]
            if drift:
                r["status"] = "drift"
            elif (significant and (psi >= PSI_WARN or effect >= r["threshold"] / 2)) or psi >= PSI_DRIFT:
                r["status"] = "warning"
            else:
                r["status"] = "ok"
        # missing rate: its own signal (absolute change and significance)
        mr, mc = r.get("missing_ref"), r.get("missing_cur")
        if mr is None or mc is None:
            r["missing_status"] = "ok"
        else:
            moved = abs(mc - mr) >= MISSING_THRESHOLD
            significant = r["missing_p_adj"] is not None and r["missing_p_adj"] < ALPHA
            r["missing_status"] = "drift" if moved and significant else "ok"
        # unseen categories: share of current rows with a category the reference never had
        ur = r.get("unseen_rate")
        r["unseen_status"] = ("drift" if ur is not None and ur >= UNSEEN_THRESHOLD
                              and ur * (r["cur_rows"] or 0) >= 10 else "ok")
        r["drifted"] = (r["status"] in ("drift", "all null in current", "all null in reference")
                        or r["missing_status"] == "drift" or r["unseen_status"] == "drift" or bool(r.get("vanished")))


# ------------------------------------------------------------------------------------------ timeline

def _timeline(profile: ReferenceProfile, cur_data: dict, ref_totals: dict, ref_stds: dict) -> pd.DataFrame:
    """Per column and period: effect vs the whole reference, missing rate, mean ratio; reference and current."""
    out = []
    for spec in profile.columns:
        for window, data in (("reference", profile.data.get(spec.name)), ("current", cur_data.get(spec.name))):
            if not data or not data["periods"]:
                continue
            grid = profile.grids.get(spec.name)
            complete = profile.categories.get(spec.name) is None
            ref_mean = (ref_totals[spec.name]["sum"] / ref_totals[spec.name]["n"]
                        if spec.kind == "numeric" and ref_totals[spec.name]["n"] else None)
            for i, period in enumerate(data["periods"]):
                part = _entry_for(data, spec.kind, i)
                stat = _period_stat(spec, grid, ref_totals[spec.name], part, ref_stds.get(spec.name), complete)
                mean = part["sum"] / part["n"] if spec.kind == "numeric" and part["n"] else None
                out.append({"column": spec.name, "period": pd.Timestamp(period), "window": window,
                            "rows": int(part["rows"]), "stat": stat,
                            "missing_rate": 1 - part["n"] / part["rows"] if part["rows"] else None,
                            "mean": mean,
                            "mean_ratio": (mean / ref_mean) if mean is not None and ref_mean else None})
    cols = ["column", "period", "window", "rows", "stat", "missing_rate", "mean", "mean_ratio"]
    return pd.DataFrame(out, columns=cols)


def _chunk_thresholds(timeline: pd.DataFrame) -> dict[str, float]:
    """Mean + 3 standard deviations of each column's per-period statistic over the reference periods."""
    ref = timeline[(timeline["window"] == "reference") & timeline["stat"].notna()]
    g = ref.groupby("column")["stat"]
    th = (g.mean() + 3 * g.std(ddof=1)).dropna()
    return {k: float(v) for k, v in th.items()}


def _best_fit(y: np.ndarray) -> dict:
    """Compare a step (two constant levels) with a hinge (flat, then a linear trend) at the best change point."""
    n = len(y)
    t = np.arange(n, dtype=float)
    best = {"step_sse": np.inf, "hinge_sse": np.inf, "step_k": None, "hinge_k": None}
    for k in range(2, n - 1):
        a, b = y[:k], y[k:]
        sse = float(((a - a.mean()) ** 2).sum() + ((b - b.mean()) ** 2).sum())
        if sse < best["step_sse"]:
            best.update(step_sse=sse, step_k=k)
        x = np.column_stack([np.ones(n), np.maximum(t - k, 0)])
        coef, *_ = np.linalg.lstsq(x, y, rcond=None)
        sse_h = float(((y - x @ coef) ** 2).sum())
        if sse_h < best["hinge_sse"] and coef[1] * (n - k) > 0:
            best.update(hinge_sse=sse_h, hinge_k=k, slope=float(coef[1]))
    best["total_sse"] = float(((y - y.mean()) ** 2).sum())
    return best


def classify_column(row: dict, tl: pd.DataFrame) -> dict:
    """Kind of a drifted column's change: pipeline break (null jump, unit change, vanished category), sudden, gradual."""
    tl = tl.sort_values("period")
    cur = tl[tl["window"] == "current"]
    miss = tl["missing_rate"].astype(float).to_numpy()
    periods = tl["period"].to_list()
    is_cur = (tl["window"] == "current").to_numpy()
    if len(miss) > 1 and is_cur[1:].any():
        # a pipeline break is a lasting step in the missing rate that happens in the current window
        # (a column filling up while history warms up in the reference is not one)
        m = np.nan_to_num(miss)
        jumps = np.where(is_cur[1:], np.abs(np.diff(m)), 0.0)
        j = int(np.argmax(jumps))
        lasting = abs(m[j + 1:].mean() - m[:j + 1].mean()) >= 0.2
        if (jumps[j] >= 0.2 and lasting) or row.get("status") == "all null in current":
            return {"kind": "pipeline break", "what": f"missing rate jumped from {m[j]:.0%} to {m[j + 1]:.0%}",
                    "since": periods[j + 1]}
    if row["kind"] == "numeric" and len(cur):
        ratios = cur["mean_ratio"].astype(float).to_numpy()
        good = np.isfinite(ratios) & (ratios > 0)
        if good.sum():
            logs = np.log10(ratios[good])
            moved = np.abs(logs) >= 0.9
            if moved.mean() >= 0.3:
                lvl = float(np.median(logs[moved]))
                if abs(lvl - round(lvl)) < 0.2:
                    first = cur["period"].to_numpy()[good][moved][0]
                    factor = 10 ** round(lvl)
                    return {"kind": "pipeline break", "since": pd.Timestamp(first),
                            "what": f"unit change: values ×{factor:g} (mean ratio {10 ** lvl:,.1f})"}
    if row.get("vanished"):
        return {"kind": "pipeline break", "since": row.get("vanished_since") or (cur["period"].min() if len(cur) else None),
                "what": "categories vanished: " + ", ".join(map(str, row["vanished"][:5]))}
    signal = "missing_rate" if row.get("status") != "drift" and row.get("missing_status") == "drift" else "stat"
    series = tl[tl[signal].notna()]
    y = series[signal].astype(float).to_numpy()
    if len(y) < 5:
        return {"kind": "drift", "what": "too few periods to tell gradual from sudden", "since": None}
    fit = _best_fit(y)
    sp = series["period"].to_list()
    if fit["step_sse"] <= fit["hinge_sse"]:
        k = fit["step_k"]
        return {"kind": "sudden", "since": sp[k], "what": f"step from {y[:k].mean():.3f} to {y[k:].mean():.3f}",
                "fit_r2": 1 - fit["step_sse"] / max(fit["total_sse"], 1e-12)}
    k = fit["hinge_k"]
    return {"kind": "gradual", "since": sp[k], "what": f"steady trend of {fit['slope']:+.4f} per period",
            "fit_r2": 1 - fit["hinge_sse"] / max(fit["total_sse"], 1e-12)}


# ------------------------------------------------------------------------------------------ importance

def column_weights(ws: Workspace, specs: list[ColumnSpec]) -> tuple[dict[str, float], str]:
    """Weights of the columns in the dataset verdict: the champion's mean |SHAP| if any, else equal."""
    imp: dict[str, float] = {}
    try:
        from fraudlab import registry
        current = registry.champion(ws)
        if current:
            frame = registry.importance(ws, current["model_id"])
            imp = dict(zip(frame["feature"], frame["mean_abs_shap"].astype(float)))
    except Exception:  # no registry, no model files or no features: equal weights
        imp = {}
    if not imp or not any(v > 0 for v in imp.values()):
        return {s.name: 1.0 for s in specs}, "equal weights"
    top = max(imp.values())
    scaled = {k: v / top for k, v in imp.items()}
    fallback = float(np.median(list(scaled.values())))
    return {s.name: scaled.get(s.name, fallback) for s in specs}, "champion feature importance (mean |SHAP|)"


# ------------------------------------------------------------------------------------------ multivariate

def _sample(ws: Workspace, window: Window, specs: list[ColumnSpec], rows: int, seed: int) -> pd.DataFrame:
    where, params = window.where("t")
    sel = ", ".join(f"{s.expr()} AS {quote_ident(s.name)}" for s in specs)
    sql = (f"SELECT * FROM (SELECT t.ts, {sel} FROM {_from_sql({s.source for s in specs})} WHERE {where}) "
           f"USING SAMPLE reservoir({int(rows)} ROWS) REPEATABLE ({int(seed)})")
    return ws.df(sql, params)


def multivariate(ws: Workspace, reference: Window, current: Window, specs: list[ColumnSpec], period: str,
                 sample_rows: int = DOMAIN_SAMPLE, seed: int = 42) -> dict:
    """Domain classifier (XGBoost, 3-fold AUC, top separating features by SHAP) and PCA error per period."""
    import xgboost as xgb
    from sklearn.decomposition import PCA
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    use = [s for s in specs if s.kind in ("numeric", "categorical") and s.source != "scores"]
    if not use:
        return {}
    ref, cur = _sample(ws, reference, use, sample_rows, seed), _sample(ws, current, use, sample_rows, seed + 1)
    if len(ref) < 50 or len(cur) < 50:
        return {"note": "too few rows for multivariate checks"}
    both = pd.concat([ref, cur], ignore_index=True)
    y = np.r_[np.zeros(len(ref)), np.ones(len(cur))]
    X = both[[s.name for s in use]].copy()
    for s in use:
        if s.kind == "categorical":
            X[s.name] = X[s.name].astype("category")
    params = {"objective": "binary:logistic", "max_depth": 4, "eta": 0.2, "tree_method": "hist", "nthread": 2,
              "seed": seed, "max_cat_to_onehot": 1, "max_bin": 64, "subsample": 0.8}
    aucs = []
    for tr, te in StratifiedKFold(3, shuffle=True, random_state=seed).split(X, y):
        b = xgb.train(params, xgb.DMatrix(X.iloc[tr], y[tr], enable_categorical=True), 30)
        aucs.append(roc_auc_score(y[te], b.predict(xgb.DMatrix(X.iloc[te], enable_categorical=True))))
    booster = xgb.train(params, xgb.DMatrix(X, y, enable_categorical=True), 30)
    pick = np.random.default_rng(seed).choice(len(X), size=min(len(X), 4_000), replace=False)
    contribs = booster.predict(xgb.DMatrix(X.iloc[pick], enable_categorical=True), pred_contribs=True)[:, :-1]
    sep = (pd.DataFrame({"feature": [s.name for s in use], "mean_abs_shap": np.abs(contribs).mean(axis=0)})
           .sort_values("mean_abs_shap", ascending=False, ignore_index=True))
    auc = float(np.mean(aucs))
    out = {"domain_auc": auc, "domain_auc_folds": [float(a) for a in aucs], "domain_drift": auc >= DOMAIN_AUC,
           "separating": sep.head(8).to_dict("records"), "sample_rows": [len(ref), len(cur)]}
    numeric = [s.name for s in use if s.kind == "numeric"]
    if len(numeric) >= 2:
        r = ref[numeric].astype(float)
        med, mu, sd = r.median(), r.mean(), r.std(ddof=0).replace(0, 1).fillna(1)

        def prep(frame: pd.DataFrame) -> np.ndarray:
            z = ((frame[numeric].astype(float).fillna(med) - mu) / sd).fillna(0.0).to_numpy()
            return np.clip(z, -50, 50)
        pca = PCA(n_components=PCA_VARIANCE, svd_solver="full", random_state=seed).fit(prep(ref))

        def error(frame: pd.DataFrame) -> np.ndarray:
            z = prep(frame)
            return np.sqrt(((z - pca.inverse_transform(pca.transform(z))) ** 2).sum(axis=1))
        per = []
        for name, frame in (("reference", ref), ("current", cur)):
            e = pd.DataFrame({"period": pd.to_datetime(frame["ts"]).dt.floor("h" if period == "hour" else "D"),
                              "error": error(frame)})
            if period == "week":
                e["period"] = pd.to_datetime(frame["ts"]).dt.to_period("W-SUN").dt.start_time
            g = e.groupby("period")["error"].agg(["mean", "size"]).reset_index()
            g["window"] = name
            per.append(g[g["size"] >= 20])
        pcs = pd.concat(per, ignore_index=True).rename(columns={"mean": "error", "size": "rows"})
        refe = pcs.loc[pcs["window"] == "reference", "error"]
        upper = float(refe.mean() + 3 * refe.std(ddof=1)) if len(refe) > 2 else float("inf")
        pcs["upper"] = upper
        pcs["alert"] = (pcs["window"] == "current") & (pcs["error"] > upper)
        cur_alert = pcs.loc[pcs["window"] == "current", "alert"]
        out.update(pca_components=int(pca.n_components_), pca=pcs,
                   pca_alert_share=float(cur_alert.mean()) if len(cur_alert) else 0.0)
    return out


# ------------------------------------------------------------------------------------------ labels and performance

def _as_of(ws: Workspace) -> datetime:
    """What is known now: the newest transaction or label time (never later than the clock)."""
    hi = ws.scalar("SELECT greatest(max(ts), (SELECT max(label_ts) FROM labels)) FROM transactions")
    return min(pd.Timestamp(hi).to_pydatetime(), utcnow()) if hi is not None else utcnow()


def _maturity_days(ws: Workspace) -> float:
    try:
        from fraudlab.model import label_maturity_days
        return label_maturity_days(ws)
    except Exception:
        return 30.0


def _labels_sql() -> str:
    try:
        from fraudlab.model import label_query
        return label_query("$as_of")
    except Exception:
        return ("SELECT transaction_id, arg_max(is_fraud, label_ts) AS label, TRUE AS trusted FROM labels "
                "WHERE label_ts IS NULL OR label_ts <= $as_of GROUP BY transaction_id")


def label_drift(ws: Workspace, reference: Window, current: Window, as_of: datetime, maturity_days: float) -> dict:
    """Fraud rate and fraud mix (by category, channel, country) on matured labels: a new pattern shows here."""
    if not ws.scalar("SELECT count(*) FROM labels"):
        return {}
    tcols = set(ws.columns("transactions"))
    groups = [c for c in ("category", "channel", "country") if c in tcols]
    mature = as_of - timedelta(days=maturity_days)
    out: dict[str, Any] = {"as_of": as_of, "matured_before": mature, "mix": []}
    frames = {}
    for name, w in (("reference", reference), ("current", current)):
        where, params = w.where("t")
        gs = ", ".join(f"({quote_ident(g)})" for g in groups) + ", ()" if groups else "()"
        sel = ", ".join(quote_ident(g) for g in groups)
        frames[name] = ws.df(f"""SELECT {sel + ',' if sel else ''} grouping_id({sel or "1"}) AS gid,
                count(*) AS n, count(*) FILTER (WHERE l.label) AS frauds
            FROM transactions t JOIN ({_labels_sql()}) l USING (transaction_id)
            WHERE {where} AND t.ts <= $mature GROUP BY GROUPING SETS ({gs})""", {**params, "as_of": as_of, "mature": mature})
    r_all = frames["reference"][frames["reference"][groups].isna().all(axis=1)] if groups else frames["reference"]
    c_all = frames["current"][frames["current"][groups].isna().all(axis=1)] if groups else frames["current"]
    rn, rf = (int(r_all["n"].sum()), int(r_all["frauds"].sum()))
    cn, cf = (int(c_all["n"].sum()), int(c_all["frauds"].sum()))
    out.update(ref_labelled=rn, ref_frauds=rf, cur_labelled=cn, cur_frauds=cf,
               ref_fraud_rate=rf / rn if rn else None, cur_fraud_rate=cf / cn if cn else None)
    if rn and cn and rf and cf:
        p = _two_proportion_p(rf, rn, cf, cn)
        change = (cf / cn) / (rf / rn) - 1
        out.update(fraud_rate_change=change, fraud_rate_p=p,
                   fraud_rate_drift=bool(p < ALPHA and abs(change) >= FRAUD_RATE_CHANGE))
        for g in groups:
            rr = frames["reference"].dropna(subset=[g]).set_index(g)["frauds"]
            cc = frames["current"].dropna(subset=[g]).set_index(g)["frauds"]
            s = categorical_stats(rr.to_dict(), cc.to_dict(), True)
            if not s:
                continue
            rshare, cshare = rr / max(rr.sum(), 1), cc / max(cc.sum(), 1)
            moved = (cshare.reindex(cshare.index.union(rshare.index), fill_value=0)
                     - rshare.reindex(cshare.index.union(rshare.index), fill_value=0)).sort_values(ascending=False)
            out["mix"].append({"column": g, "jensenshannon": s["jensenshannon"], "chi2_p": s["chi2_p"],
                               "drift": bool(s["jensenshannon"] >= LABEL_MIX_THRESHOLD and s["chi2_p"] < ALPHA
                                             and len(moved) and moved.iloc[0] >= LABEL_MIX_GROWTH),
                               "grew": str(moved.index[0]) if len(moved) else None,
                               "grew_by": float(moved.iloc[0]) if len(moved) else None})
    out["drift"] = bool(out.get("fraud_rate_drift") or any(m["drift"] for m in out["mix"]))
    return out


def performance_drift(ws: Workspace, reference: Window, current: Window, as_of: datetime,
                      maturity_days: float) -> dict:
    """Weekly PR-AUC and recall at the daily alert budget on scored rows with matured labels (SQL ranks)."""
    if not (ws.has_table("scores") and ws.scalar("SELECT count(*) FROM scores") and ws.scalar("SELECT count(*) FROM labels")):
        return {}
    try:
        from fraudlab.model import ALERT_BUDGET_PER_DAY as budget
    except Exception:
        budget = 20
    mature = as_of - timedelta(days=maturity_days)
    frames = []
    for name, w in (("reference", reference), ("current", current)):
        where, params = w.where("t")
        frames.append(ws.df(f"""
            WITH x AS (
              SELECT date_trunc('week', t.ts) AS week, date_trunc('day', t.ts) AS day, s.score, l.label
              FROM transactions t JOIN scores s USING (transaction_id) JOIN ({_labels_sql()}) l USING (transaction_id)
              WHERE {where} AND t.ts <= $mature),
            d AS (SELECT week, count(DISTINCT day) AS days FROM x GROUP BY week),
            r AS (SELECT week, label,
                    row_number() OVER (PARTITION BY week ORDER BY score DESC) AS rk,
                    sum(label::INT) OVER (PARTITION BY week ORDER BY score DESC ROWS UNBOUNDED PRECEDING) AS tp
                  FROM x)
            SELECT r.week, count(*) AS rows, count(*) FILTER (WHERE label) AS frauds,
                   avg(tp / rk) FILTER (WHERE label) AS pr_auc,
                   count(*) FILTER (WHERE label AND rk <= d.days * {int(budget)}) AS caught,
                   any_value(d.days) * {int(budget)} AS alerts
            FROM r JOIN d USING (week) GROUP BY r.week ORDER BY r.week""",
                            {**params, "as_of": as_of, "mature": mature}).assign(window=name))
    weeks = pd.concat(frames, ignore_index=True)
    if weeks.empty:
        return {"note": "no scored rows with matured labels in these windows"}
    weeks["recall_at_budget"] = weeks["caught"] / weeks["frauds"].where(weeks["frauds"] > 0)
    ok = weeks[weeks["frauds"] >= 5]
    ref, cur = ok[ok["window"] == "reference"], ok[ok["window"] == "current"]
    out: dict[str, Any] = {"weeks": weeks, "budget_per_day": int(budget), "matured_before": mature}
    if len(ref) and len(cur):
        for metric in ("pr_auc", "recall_at_budget"):
            rm = float(np.average(ref[metric], weights=ref["frauds"]))
            cm = float(np.average(cur[metric], weights=cur["frauds"]))
            sd = float(ref[metric].std(ddof=1)) if len(ref) > 2 else 0.0
            out[metric] = {"reference": rm, "current": cm,
                           "drift": bool(cm < rm - max(3 * sd / math.sqrt(len(cur)), PERF_DROP * rm))}
        out["drift"] = bool(out["pr_auc"]["drift"] or out["recall_at_budget"]["drift"])
    else:
        out["note"] = "too few matured frauds per week in one of the windows"
    return out


def prediction_drift(ws: Workspace, reference: Window, current: Window) -> dict:
    """Alert rate at the champion's threshold in both windows (the score distribution is a monitored column)."""
    if not (ws.has_table("scores") and ws.scalar("SELECT count(*) FROM scores")):
        return {}
    try:
        from fraudlab.model import decision_threshold
        threshold = decision_threshold(ws)
    except Exception:
        threshold = 0.5
    out = {"threshold": threshold}
    for name, w in (("reference", reference), ("current", current)):
        where, params = w.where("t")
        n, a = ws.arrow(f"SELECT count(*) AS n, count(*) FILTER (WHERE s.score >= $th) AS a FROM transactions t "
                        f"JOIN scores s USING (transaction_id) WHERE {where}", {**params, "th": threshold}).to_pylist()[0].values()
        out[f"{name}_rows"], out[f"{name}_alert_rate"] = n, (a / n if n else None)
    rr, cr = out.get("reference_alert_rate"), out.get("current_alert_rate")
    if rr is not None and cr is not None and out["reference_rows"] and out["current_rows"]:
        p = _two_proportion_p(rr * out["reference_rows"], out["reference_rows"], cr * out["current_rows"], out["current_rows"])
        change = (cr / rr - 1) if rr else (float("inf") if cr else 0.0)
        out.update(alert_rate_change=change, alert_rate_p=p, drift=bool(p < ALPHA and abs(change) >= 0.5))
    return out


# ------------------------------------------------------------------------------------------ the report

@dataclass
class DriftReport:
    """Everything one drift run found; `columns` is the per-column table, `findings` what to do about it."""

    reference: Window
    current: Window
    period: str
    columns: pd.DataFrame
    findings: pd.DataFrame
    timeline: pd.DataFrame
    distributions: dict[str, dict]
    verdict: dict
    multivariate: dict = field(default_factory=dict)
    prediction: dict = field(default_factory=dict)
    performance: dict = field(default_factory=dict)
    labels: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    created_at: datetime = field(default_factory=utcnow)
    run_id: int | None = None

    def drifted(self) -> list[str]:
        """Names of the columns with any drift signal."""
        return self.columns.loc[self.columns["drifted"], "column"].tolist()

    def to_json(self) -> str:
        return json.dumps({
            "reference": self.reference.to_dict(), "current": self.current.to_dict(), "period": self.period,
            "columns": _records(self.columns), "findings": _records(self.findings), "timeline": _records(self.timeline),
            "distributions": self.distributions, "verdict": self.verdict,
            "multivariate": {k: (_records(v) if isinstance(v, pd.DataFrame) else v) for k, v in self.multivariate.items()},
            "prediction": self.prediction,
            "performance": {k: (_records(v) if isinstance(v, pd.DataFrame) else v) for k, v in self.performance.items()},
            "labels": self.labels, "timings": self.timings, "created_at": self.created_at.isoformat()},
            default=_json_default)

    @classmethod
    def from_json(cls, text: str, run_id: int | None = None) -> "DriftReport":
        d = json.loads(text)

        def frame(records, dates=("period", "week", "since")):
            f = pd.DataFrame(records)
            for c in dates:
                if c in f:
                    f[c] = pd.to_datetime(f[c])
            return f
        mv = dict(d.get("multivariate") or {})
        if "pca" in mv:
            mv["pca"] = frame(mv["pca"])
        perf = dict(d.get("performance") or {})
        if "weeks" in perf:
            perf["weeks"] = frame(perf["weeks"])
        return cls(Window.from_dict(d["reference"]), Window.from_dict(d["current"]), d["period"], frame(d["columns"]),
                   frame(d["findings"]), frame(d["timeline"]), d["distributions"], d["verdict"], mv,
                   d.get("prediction") or {}, perf, d.get("labels") or {}, d.get("timings") or {},
                   datetime.fromisoformat(d["created_at"]), run_id)


def _json_default(v):
    if isinstance(v, (datetime, pd.Timestamp)):
        return pd.Timestamp(v).isoformat()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return None if not np.isfinite(v) else float(v)
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, pd.DataFrame):
        return _records(v)
    raise TypeError(f"cannot serialise {type(v)}")


def _records(frame: pd.DataFrame) -> list[dict]:
    """DataFrame rows as JSON-safe dicts: NaN/inf become None, timestamps ISO text."""
    if frame is None or frame.empty:
        return []
    out = frame.copy()
    for c in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[c]):
            out[c] = out[c].dt.strftime("%Y-%m-%dT%H:%M:%S")
    out = out.astype(object).where(pd.notna(out), None)
    recs = out.to_dict("records")
    for r in recs:
        for k, v in r.items():
            if isinstance(v, float) and not math.isfinite(v):
                r[k] = None
    return recs


def _distribution(spec: ColumnSpec, grid: Grid | None, ref: dict, cur: dict, top: int = 25) -> dict:
    """Shares per bin (numeric, on the reference grid, tails apart) or per category, for overlaid charts."""
    if spec.kind == "numeric" and ref["n"] and cur["n"]:
        r, c = ref["hist"] / max(ref["hist"].sum(), 1), cur["hist"] / max(cur["hist"].sum(), 1)
        # merge the 100 fine bins into 25 for drawing
        k = 4
        inner_r, inner_c = r[1:-1].reshape(-1, k).sum(axis=1), c[1:-1].reshape(-1, k).sum(axis=1)
        centres = grid.centres().reshape(-1, k).mean(axis=1)
        lo, hi = grid.inverse(np.array([grid.lo, grid.hi]))
        x = [f"< {lo:,.4g}"] + [f"{v:,.4g}" for v in centres] + [f"≥ {hi:,.4g}"]
        return {"kind": "numeric", "x": x, "reference": [r[0], *inner_r, r[-1]], "current": [c[0], *inner_c, c[-1]]}
    if spec.kind == "categorical" and ref["n"] and cur["n"]:
        keys = sorted(set(ref["counts"]) | set(cur["counts"]),
                      key=lambda k: -(ref["counts"].get(k, 0) / ref["n"] + cur["counts"].get(k, 0) / cur["n"]))[:top]
        return {"kind": "categorical", "x": [str(k) + ("" if k in ref["counts"] else " (new)") for k in keys],
                "reference": [ref["counts"].get(k, 0) / ref["n"] for k in keys],
                "current": [cur["counts"].get(k, 0) / cur["n"] for k in keys]}
    return {"kind": spec.kind, "x": ["missing", "present"],
            "reference": [1 - ref["n"] / ref["rows"] if ref["rows"] else 0, ref["n"] / ref["rows"] if ref["rows"] else 0],
            "current": [1 - cur["n"] / cur["rows"] if cur["rows"] else 0, cur["n"] / cur["rows"] if cur["rows"] else 0]}


def _recommend(kind: str, row: dict, weight: float, median_weight: float) -> str:
    if kind == "pipeline break":
        return RECOMMEND["pipeline"]
    strong = (row.get("effect") or 0) >= 2 * (row.get("threshold") or DISTANCE_THRESHOLD)
    if kind == "sudden" or strong or weight > median_weight:
        return RECOMMEND["retrain"]
    return RECOMMEND["watch"]


def run_report(ws: Workspace, reference: Window, current: Window, *, overrides: dict[str, str] | None = None,
               columns: list[str] | None = None, threshold_mode: str = "default", multivariate_checks: bool = True,
               performance_checks: bool = True, as_of: datetime | None = None, seed: int = 42,
               progress: Progress | None = None) -> DriftReport:
    """Compare the current window with the (frozen) reference profile; return the full drift report.

    threshold_mode: 'default' (the common open-source thresholds) or 'reference_chunks' (mean + 3σ of the
    statistic across reference periods). `columns` limits the monitored columns by name.
    """
    progress = progress or (lambda f, m: None)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    specs = monitored_columns(ws, overrides)
    if columns is not None:
        specs = [s for s in specs if s.name in set(columns)]
    if not specs:
        raise FraudlabError("no columns to monitor: the transactions table has no usable columns")
    progress(0.02, "reference profile")
    profile = reference_profile(ws, reference, specs, progress=lambda f, m: progress(0.02 + 0.3 * f, m))
    timings["reference_profile"] = time.perf_counter() - t0
    t = time.perf_counter()
    progress(0.35, "scanning the current window")
    cur_data = _scan(ws, current, specs, profile.grids, profile.categories, profile.period)
    timings["current_scan"] = time.perf_counter() - t
    t = time.perf_counter()
    progress(0.55, "tests per column")
    ref_tot, cur_tot, ref_std = {}, {}, {}
    for s in specs:
        rd = profile.data.get(s.name) or _empty_entry(s.kind, profile.grids.get(s.name))
        cd = cur_data.get(s.name) or _empty_entry(s.kind, profile.grids.get(s.name))
        ref_tot[s.name], cur_tot[s.name] = _total(rd, s.kind), _total(cd, s.kind)
        if s.kind == "numeric":
            ref_std[s.name] = _mean_std(ref_tot[s.name])[1]
    rows = [_column_row(s, profile, ref_tot[s.name], cur_tot[s.name]) for s in specs]
    for s, r in zip(specs, rows):
        if s.kind == "categorical" and s.name in cur_data:
            gone, since = _vanished(ref_tot[s.name], cur_data[s.name])
            if gone:
                r["vanished"], r["vanished_since"] = gone, since
    timeline = _timeline(profile, cur_data, ref_tot, ref_std)
    chunk = _chunk_thresholds(timeline)
    _decide(rows, chunk, threshold_mode)
    weights, weight_source = column_weights(ws, specs)
    for r in rows:
        r["chunk_threshold"] = chunk.get(r["column"])
        r["importance"] = weights.get(r["column"], 1.0)
    if not timeline.empty:
        timeline["threshold"] = timeline["column"].map(chunk)
        timeline["alert"] = (timeline["window"] == "current") & (timeline["stat"] > timeline["threshold"])
    timings["tests"] = time.perf_counter() - t

    t = time.perf_counter()
    median_w = float(np.median(list(weights.values()))) if weights else 1.0
    findings = []
    for r in rows:
        if not r["drifted"]:
            r["finding"] = ""
            continue
        c = classify_column(r, timeline[timeline["column"] == r["column"]])
        rec = _recommend(c["kind"], r, r["importance"], median_w)
        r["finding"] = c["kind"]
        findings.append({"column": r["column"], "kind": c["kind"], "since": c.get("since"), "what": c["what"],
                         "effect": r.get("effect"), "recommendation": rec})
    multi = multivariate(ws, reference, current, specs, profile.period, seed=seed) if multivariate_checks else {}
    timings["multivariate"] = time.perf_counter() - t
    t = time.perf_counter()
    pred, perf, labels = {}, {}, {}
    if performance_checks:
        progress(0.8, "prediction, label and performance drift")
        as_of = as_of or _as_of(ws)
        maturity = _maturity_days(ws)
        pred = prediction_drift(ws, reference, current)
        labels = label_drift(ws, reference, current, as_of, maturity)
        perf = performance_drift(ws, reference, current, as_of, maturity)
        if labels.get("drift"):
            mix = [m for m in labels["mix"] if m["drift"]]
            what = "; ".join(f"frauds moved towards {m['column']} = {m['grew']} (+{m['grew_by']:.0%} of frauds)" for m in mix)
            if labels.get("fraud_rate_drift"):
                what = (f"fraud rate {labels['ref_fraud_rate']:.3%} → {labels['cur_fraud_rate']:.3%}; " + what).strip("; ")
            findings.append({"column": "(labels)", "kind": "new fraud pattern", "since": None, "what": what,
                             "effect": max([m["jensenshannon"] for m in mix] or [abs(labels.get("fraud_rate_change", 0))]),
                             "recommendation": RECOMMEND["retrain"]})
        if perf.get("drift"):
            findings.append({"column": "(model)", "kind": "performance drop", "since": None,
                             "what": f"weekly PR-AUC {perf['pr_auc']['reference']:.3f} → {perf['pr_auc']['current']:.3f}, "
                                     f"recall at budget {perf['recall_at_budget']['reference']:.2f} → "
                                     f"{perf['recall_at_budget']['current']:.2f}",
                             "effect": None, "recommendation": RECOMMEND["retrain"]})
        if pred.get("drift"):
            findings.append({"column": "(scores)", "kind": "prediction drift", "since": None,
                             "what": f"alert rate {pred['reference_alert_rate']:.3%} → {pred['current_alert_rate']:.3%}",
                             "effect": pred.get("alert_rate_change"), "recommendation": RECOMMEND["watch"]})
    timings["labels_performance"] = time.perf_counter() - t
    if multi.get("domain_drift"):
        top = ", ".join(f["feature"] for f in multi["separating"][:3])
        findings.append({"column": "(all)", "kind": "multivariate drift", "since": None,
                         "what": f"a classifier tells the windows apart (AUC {multi['domain_auc']:.2f}); most: {top}",
                         "effect": multi["domain_auc"], "recommendation": RECOMMEND["watch"]})
    table = pd.DataFrame(rows)
    keep = ["column", "source", "kind", "test", "statistic", "threshold", "p_value", "p_adj", "psi", "status",
            "missing_ref", "missing_cur", "missing_status", "unseen_rate", "unseen_status", "drifted", "finding",
            "importance", "chunk_threshold", "effect", "ref_rows", "cur_rows", "detail"]
    table = table.reindex(columns=keep)
    dists = {s.name: _distribution(s, profile.grids.get(s.name), ref_tot[s.name], cur_tot[s.name]) for s in specs}
    fcols = ["column", "kind", "since", "what", "effect", "recommendation"]
    findings_df = pd.DataFrame(findings, columns=fcols)
    verdict = _verdict(table, findings_df, weight_source)
    timings["total"] = time.perf_counter() - t0
    progress(1.0, "done")
    return DriftReport(reference, current, profile.period, table, findings_df, timeline, dists, verdict, multi,
                       pred, perf, labels, timings)


def _verdict(table: pd.DataFrame, findings: pd.DataFrame, weight_source: str) -> dict:
    """Dataset verdict: importance-weighted share of drifted columns and the most urgent recommendation."""
    w = table["importance"].astype(float).fillna(1.0)
    drifted = table["drifted"].astype(bool)
    share = float(w[drifted].sum() / w.sum()) if w.sum() else 0.0
    kinds = set(findings["kind"]) if not findings.empty else set()
    if "pipeline break" in kinds:
        status = "pipeline break"
    elif share >= DATASET_SHARE:
        status = "dataset drift"
    elif kinds & {"new fraud pattern", "performance drop"}:
        status = "concept drift"
    elif drifted.any() or kinds:
        status = "drift in some columns"
    else:
        status = "no drift"
    recs = set(findings["recommendation"]) if not findings.empty else set()
    action = next((RECOMMEND[k] for k in ("pipeline", "retrain", "watch") if RECOMMEND[k] in recs), "nothing to do")
    names = table.loc[drifted, "column"].tolist()
    headline = ("No drift: every monitored column and signal is within its threshold." if status == "no drift" else
                f"{status.capitalize()}: {len(names)} of {len(table)} columns drifted "
                f"({share:.0%} by {weight_source}).")
    return {"status": status, "drifted_columns": names, "n_drifted": len(names), "n_columns": int(len(table)),
            "weighted_share": share, "share": float(drifted.mean()) if len(drifted) else 0.0,
            "weights": weight_source, "headline": headline, "action": action}


# ------------------------------------------------------------------------------------------ runs

def save_run(ws: Workspace, report: DriftReport, who: str = "system") -> int:
    """Store a report in drift_runs (results as JSON) and return its run id."""
    with ws.write("drift run", who, {"reference": report.reference.label, "current": report.current.label,
                                     "status": report.verdict["status"]}) as cur:
        run_id = cur.execute("SELECT nextval('drift_run_seq')").fetchone()[0]
        cur.execute("INSERT INTO drift_runs VALUES (?, ?, ?, ?, ?)",
                    [run_id, report.created_at, json.dumps(report.reference.to_dict()),
                     json.dumps(report.current.to_dict()), report.to_json()])
    report.run_id = int(run_id)
    return int(run_id)


def list_runs(ws: Workspace) -> pd.DataFrame:
    """Earlier runs, newest first: id, time, windows, verdict, drifted columns."""
    frame = ws.df("""SELECT run_id, created_at, reference, current,
                            json_extract_string(results, '$.verdict.status') AS status,
                            json_extract_string(results, '$.verdict.headline') AS headline,
                            json_extract(results, '$.verdict.drifted_columns')::VARCHAR AS drifted
                     FROM drift_runs ORDER BY run_id DESC""")
    for c in ("reference", "current"):
        frame[c] = [Window.from_dict(json.loads(v)).label for v in frame[c]]
    return frame


def load_run(ws: Workspace, run_id: int) -> DriftReport:
    """A saved report by id."""
    text = ws.scalar("SELECT results FROM drift_runs WHERE run_id = ?", [int(run_id)])
    if text is None:
        raise FraudlabError(f"no drift run {run_id}")
    return DriftReport.from_json(text, int(run_id))


def compare_runs(ws: Workspace, run_ids: list[int]) -> pd.DataFrame:
    """Status of every column across several saved runs (columns = runs), to see what changed between them."""
    parts = []
    for rid in run_ids:
        rep = load_run(ws, rid)
        col = rep.columns.set_index("column")
        parts.append((col["status"].where(~col["drifted"].astype(bool), col["finding"].replace("", "drift"))
                      .rename(f"run {rid}")))
    return pd.concat(parts, axis=1).reset_index() if parts else pd.DataFrame()


# ------------------------------------------------------------------------------------------ command line

def register_cli(subparsers) -> None:
    """`python -m fraudlab drift [--reference-from D --reference-to D --current-from D --current-to D] [--html F]`."""
    p = subparsers.add_parser("drift", help="drift report between a reference and a current window (saved as a run)")
    for name in ("reference-from", "reference-to", "current-from", "current-to"):
        p.add_argument(f"--{name}", help="date or timestamp; default: first half vs second half of the data")
    p.add_argument("--reference-ingests", help="comma-separated ingest ids (instead of dates)")
    p.add_argument("--current-ingests", help="comma-separated ingest ids (instead of dates)")
    p.add_argument("--thresholds", choices=("default", "reference_chunks"), default="default")
    p.add_argument("--no-multivariate", action="store_true")
    p.add_argument("--html", help="also write the self-contained HTML report here")
    p.set_defaults(func=_cli_drift)


def _cli_drift(args) -> int:
    ws = Workspace()
    ref, cur = split_windows(ws)
    if args.reference_ingests:
        ref = Window.ingests(args.reference_ingests.split(","))
    elif args.reference_from or args.reference_to:
        ref = Window.dates(args.reference_from or ref.start, args.reference_to or ref.end)
    if args.current_ingests:
        cur = Window.ingests(args.current_ingests.split(","))
    elif args.current_from or args.current_to:
        cur = Window.dates(args.current_from or cur.start, args.current_to or cur.end)
    rep = run_report(ws, ref, cur, threshold_mode=args.thresholds, multivariate_checks=not args.no_multivariate)
    run_id = save_run(ws, rep, who="cli")
    print(f"run {run_id}: {rep.verdict['headline']}\nrecommended: {rep.verdict['action']}")
    if not rep.findings.empty:
        print(rep.findings[["column", "kind", "since", "what"]].to_string(index=False))
    if args.html:
        from fraudlab.drift_charts import report_html
        with open(args.html, "w", encoding="utf-8") as fh:
            fh.write(report_html(rep))
        print(f"HTML report: {args.html}")
    return 0
