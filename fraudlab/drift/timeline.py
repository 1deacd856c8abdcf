"""Per-period statistics over the current window and the kind of drift (gradual, sudden, pipeline break)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from fraudlab.drift.per_column import period_stat
from fraudlab.drift.profile import ReferenceProfile
from fraudlab.drift.stats import entry_for


def timeline_of(profile: ReferenceProfile, cur_data: dict, ref_totals: dict, ref_stds: dict) -> pd.DataFrame:
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
                part = entry_for(data, spec.kind, i)
                stat = period_stat(spec, grid, ref_totals[spec.name], part, ref_stds.get(spec.name), complete)
                mean = part["sum"] / part["n"] if spec.kind == "numeric" and part["n"] else None
                out.append({"column": spec.name, "period": pd.Timestamp(period), "window": window,
                            "rows": int(part["rows"]), "stat": stat,
                            "missing_rate": 1 - part["n"] / part["rows"] if part["rows"] else None,
                            "mean": mean,
                            "mean_ratio": (mean / ref_mean) if mean is not None and ref_mean else None})
    cols = ["column", "period", "window", "rows", "stat", "missing_rate", "mean", "mean_ratio"]
    return pd.DataFrame(out, columns=cols)


def chunk_thresholds(timeline: pd.DataFrame) -> dict[str, float]:
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
