"""The frozen reference profile, stored in `drift_profiles` and reused while the reference rows are unchanged."""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from fraudlab.auth.actors import SYSTEM, Actor
from fraudlab.drift.columns import ColumnSpec, from_sql, monitored_columns
from fraudlab.drift.grids import Grid, grid_from_quantiles
from fraudlab.drift.scans import scan_of
from fraudlab.drift.settings import (
    GRID_SAMPLE,
    MAX_CATEGORIES,
    NUM_BINS,
    PROFILE_TABLE,
    TOP_K,
)
from fraudlab.drift.windows import Window
from fraudlab.jobs import Progress
from fraudlab.workspace import Workspace, quote_ident, utcnow


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
        for name, entry in data.items():
            entry["periods"] = [pd.Timestamp(p).to_pydatetime() for p in entry["periods"]]
            if "hist" in entry:
                bins = d["grids"].get(name, {}).get("bins", NUM_BINS) + 2  # a window may hold no value at all
                entry["hist"] = np.asarray(entry["hist"], dtype=float).reshape(len(entry["periods"]), bins)
        return cls(Window.from_dict(d["window"]), [ColumnSpec(**c) for c in d["columns"]], d["period"],
                   {k: Grid(**g) for k, g in d["grids"].items()}, d["categories"], data, d["fingerprint"],
                   datetime.fromisoformat(d["created_at"]), d.get("seconds", 0.0))




def _fingerprint(ws: Workspace, window: Window, specs: list[ColumnSpec]) -> str:
    """Cheap identity of the reference rows: counts and max ingest id per source (a rescan of ts only)."""
    where, params = window.where("t")
    parts = [ws.scalar(f"SELECT count(*) || ':' || coalesce(max(ingest_id), 0) FROM transactions t WHERE {where}", params)]
    for source in sorted({s.source for s in specs} - {"transactions"}):
        extra = " || ':' || coalesce(max(s.scored_at)::VARCHAR, '')" if source == "scores" else ""
        parts.append(ws.scalar(f"SELECT count(*){extra} FROM {from_sql({source})} WHERE {where}", params))
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
            sample = ws.arrow(f"SELECT * FROM (SELECT {sel} FROM {from_sql({source})} WHERE {where}) "
                              f"USING SAMPLE reservoir({GRID_SAMPLE} ROWS) REPEATABLE (7)", params)
            extremes = ws.arrow(f"SELECT {', '.join(f'min({s.expr()}) AS mn_{i}, max({s.expr()}) AS mx_{i}' for i, s in enumerate(nums))} "
                                f"FROM {from_sql({source})} WHERE {where}", params).to_pylist()[0]
            for i, s in enumerate(nums):
                v = sample.column(s.name).to_numpy(zero_copy_only=False).astype(float)
                v = v[np.isfinite(v)]
                if not len(v) or extremes[f"mn_{i}"] is None:
                    grids[s.name] = Grid(-0.5, 0.5, "identity")
                    continue
                q = np.quantile(v, [0.005, 0.5, 0.995])
                grids[s.name] = grid_from_quantiles(q[0], q[1], q[2], extremes[f"mn_{i}"], extremes[f"mx_{i}"])
        cat_cols = [s for s in cols if s.kind == "categorical"]
        if cat_cols:
            row = ws.arrow(f"SELECT {', '.join(f'approx_count_distinct({s.expr()}) AS d_{i}' for i, s in enumerate(cat_cols))} "
                           f"FROM {from_sql({source})} WHERE {where}", params).to_pylist()[0]
            for i, s in enumerate(cat_cols):
                if (row[f"d_{i}"] or 0) <= MAX_CATEGORIES:
                    cats[s.name] = None
                else:
                    top = ws.arrow(f"SELECT {s.expr()} AS v, count(*) AS c FROM {from_sql({source})} WHERE {where} "
                                   f"AND {s.expr()} IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {TOP_K}", params)
                    cats[s.name] = top.column("v").to_pylist()
    progress(0.4, "reference histograms")
    data = scan_of(ws, window, specs, grids, cats, period)
    fp = _fingerprint(ws, window, specs)
    return ReferenceProfile(window, specs, period, grids, cats, data, fp, seconds=time.perf_counter() - began)


def reference_profile(ws: Workspace, window: Window, specs: list[ColumnSpec] | None = None,
                      progress: Progress | None = None) -> tuple[ReferenceProfile, bool]:
    """The frozen profile of this reference window if its rows are unchanged, else a fresh one; and whether it is
    fresh (freeze it with :func:`freeze_profile` once the report that needed it has finished)."""
    specs = specs if specs is not None else monitored_columns(ws)
    period = _choose_period(ws, window)
    key = _profile_key(window, specs, period)
    fp = _fingerprint(ws, window, specs)
    row = ws.df(f"SELECT profile FROM {PROFILE_TABLE} WHERE profile_key = ? AND fingerprint = ? "
                "ORDER BY created_at DESC LIMIT 1", [key, fp])
    if not row.empty:
        return ReferenceProfile.from_json(row["profile"].iloc[0]), False
    return fit_reference(ws, window, specs, period, progress), True


def freeze_profile(ws: Workspace, profile: ReferenceProfile, who: Actor = SYSTEM) -> None:
    """Store a reference profile for later runs (only after a run that used it finished)."""
    key = _profile_key(profile.window, profile.columns, profile.period)
    with ws.write("drift reference frozen", who, {"reference": profile.window.label,
                                                  "columns": len(profile.columns)}) as cur:
        cur.execute(f"DELETE FROM {PROFILE_TABLE} WHERE profile_key = ?", [key])
        cur.execute(f"INSERT INTO {PROFILE_TABLE} VALUES (?, ?, ?, ?, ?)",
                    [key, profile.created_at, json.dumps(profile.window.to_dict()), profile.fingerprint,
                     profile.to_json()])


def clear_profiles(ws: Workspace, who: Actor = SYSTEM) -> None:
    """Forget every frozen reference profile, so the next report fits its reference afresh."""
    with ws.write("drift_profiles_cleared", who) as cur:
        cur.execute(f"DELETE FROM {PROFILE_TABLE}")
