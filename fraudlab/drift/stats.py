"""Window-level statistics from binned histograms and counts: KS, Wasserstein, PSI, chi-squared, Jensen-Shannon."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats
from scipy.spatial.distance import jensenshannon

from fraudlab.drift.grids import Grid
from fraudlab.drift.settings import NUM_BINS, OTHER


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


def two_proportion_p(x1: float, n1: float, x2: float, n2: float) -> float:
    if n1 == 0 or n2 == 0:
        return 1.0
    p = (x1 + x2) / (n1 + n2)
    se = math.sqrt(max(p * (1 - p) * (1 / n1 + 1 / n2), 1e-300))
    z = abs(x1 / n1 - x2 / n2) / se
    return float(2 * stats.norm.sf(z))


def total_of(entry: dict, kind: str, mask: np.ndarray | None = None) -> dict:
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


def mean_std(t: dict) -> tuple[float | None, float | None]:
    if not t["n"]:
        return None, None
    mean = t["sum"] / t["n"]
    var = max(t["sumsq"] / t["n"] - mean * mean, 0.0)
    return mean, math.sqrt(var)


def entry_for(entry: dict, kind: str, i: int) -> dict:
    """One period of a column's per-period arrays, in the shape of a window aggregate."""
    out = {"n": float(entry["n"][i] or 0), "rows": float(entry["rows"][i] or 0)}
    if kind == "numeric":
        out["hist"] = entry["hist"][i]
        for k in ("sum", "sumsq", "under_sum", "over_sum", "min", "max"):
            out[k] = entry[k][i]
    elif kind == "categorical":
        out["counts"] = entry["counts"][i]
    return out


def empty_entry(kind: str, grid: Grid | None) -> dict:
    e: dict[str, Any] = {"periods": [], "rows": [], "n": []}
    if kind == "numeric":
        e.update(hist=np.zeros((0, (grid.bins if grid else NUM_BINS) + 2)), sum=[], sumsq=[], under_sum=[],
                 over_sum=[], min=[], max=[])
    elif kind == "categorical":
        e["counts"] = []
    return e
