"""Drift report benchmark: ~30 monitored columns at N rows, DuckDB report vs the same tests with pandas / scipy.

    python benchmarks/bench_drift.py --rows 1000000

Data: a no-drift simulation (90 days) plus 12 numeric and 3 categorical extra columns, so the report monitors
30 columns (5 canonical numeric, 4 canonical categorical, 6 id missing rates, 15 extras). Reference = first half,
current = second half. The baseline holds both windows as in-memory pandas frames (loading them is timed apart)
and runs the same window-level tests exactly (scipy KS, Wasserstein, chi-squared, Jensen-Shannon, PSI, missing
rates) plus the same per-day timeline (PSI / Jensen-Shannon per day vs the reference).
"""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from _common import BENCH_DATA, measure, report, set_ratio

from fraudlab import drift
from fraudlab.generate import simulate
from fraudlab.ingest import ingest_table
from fraudlab.workspace import Workspace

EXTRA_NUMERIC = 12
EXTRA_CATEGORICAL = 3


def build_workspace(rows: int, seed: int = 5) -> Workspace:
    """A cached workspace with the simulation and extra columns (built once per row count)."""
    path = BENCH_DATA / f"drift_{rows}.duckdb"
    if path.exists():
        return Workspace(path)
    BENCH_DATA.mkdir(parents=True, exist_ok=True)
    sim = simulate(rows, seed=seed, days=90)
    frame = sim.transactions
    rng = np.random.default_rng(seed)
    n = len(frame)
    for i in range(EXTRA_NUMERIC):
        kind = i % 3
        frame[f"x_num_{i}"] = (rng.normal(i, 1 + i, n) if kind == 0 else
                               rng.lognormal(1, 0.5 + 0.1 * i, n) if kind == 1 else
                               rng.poisson(1 + i, n).astype(float))
    for i in range(EXTRA_CATEGORICAL):
        k = (5, 40, 500)[i]
        frame[f"x_cat_{i}"] = pd.array(np.char.add("v", rng.zipf(1.5, n).clip(1, k).astype(str)), dtype="str")
    ingest_table(Workspace(path), frame, source=f"bench drift {rows}", keep_columns="all")  # extras monitored
    return Workspace(path)


def load_frames(ws: Workspace, specs, ref: drift.Window, cur: drift.Window) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both windows in memory, as a pandas user would hold them (ids as is-null flags, categoricals as categories)."""
    out = []
    for w in (ref, cur):
        where, params = w.where("t")
        sel = ["t.ts"] + [f"t.{s.name} IS NULL AS {s.name}" if s.kind == "id" else f"t.{s.name}" for s in specs]
        table = ws.arrow(f"SELECT {', '.join(sel)} FROM transactions t WHERE {where}", params)
        cols = {}
        for name in table.column_names:
            col = table[name]
            cols[name] = pc.dictionary_encode(col) if pa.types.is_string(col.type) or pa.types.is_large_string(col.type) else col
        out.append(pa.table(cols).to_pandas())
    return out[0], out[1]


def pandas_tests(ref: pd.DataFrame, cur: pd.DataFrame, specs) -> pd.DataFrame:
    """The same tests on in-memory frames: exact scipy statistics per column plus a per-day timeline."""
    from scipy import stats
    from scipy.spatial.distance import jensenshannon

    rows = []
    cur_day = cur["ts"].dt.floor("D")
    ref_day = ref["ts"].dt.floor("D")
    for s in specs:
        if s.kind == "id":
            rows.append({"column": s.name, "missing_ref": ref[s.name].mean(), "missing_cur": cur[s.name].mean()})
            continue
        a, b = ref[s.name], cur[s.name]
        row = {"column": s.name, "missing_ref": a.isna().mean(), "missing_cur": b.isna().mean()}
        if s.kind == "numeric":
            x, y = a.dropna().to_numpy(), b.dropna().to_numpy()
            ks = stats.ks_2samp(x, y)
            row.update(ks=ks.statistic, ks_p=ks.pvalue, wasserstein_norm=stats.wasserstein_distance(x, y) / x.std())
            edges = np.unique(np.quantile(x, np.linspace(0, 1, 11)))
            edges[0], edges[-1] = -np.inf, np.inf
            r = np.histogram(x, edges)[0] / len(x)
            row["psi"] = _psi(r, np.histogram(y, edges)[0] / len(y))
            # timeline: PSI per day against the reference deciles (both windows)
            for frame, day in ((a, ref_day), (b, cur_day)):
                codes = np.searchsorted(edges[1:-1], frame.to_numpy(), side="right")
                counts = pd.crosstab(day, codes)
                shares = counts.div(counts.sum(axis=1), axis=0).reindex(columns=range(len(r)), fill_value=0)
                _ = [_psi(r, s_) for s_ in shares.to_numpy()]
        else:
            rc, cc = a.value_counts(), b.value_counts()
            keys = rc.index.union(cc.index)
            r, c = rc.reindex(keys, fill_value=0).to_numpy(float), cc.reindex(keys, fill_value=0).to_numpy(float)
            chi2, p, _, _ = stats.chi2_contingency(np.vstack([r, c]) + 0.0)
            row.update(chi2_p=p, jensenshannon=jensenshannon(r / r.sum(), c / c.sum(), base=2),
                       psi=_psi(r / r.sum(), c / c.sum()))
            for frame, day in ((a, ref_day), (b, cur_day)):
                counts = pd.crosstab(day, frame).reindex(columns=keys, fill_value=0)
                _ = [jensenshannon(r / r.sum(), row_ / max(row_.sum(), 1), base=2) for row_ in counts.to_numpy(float)]
        rows.append(row)
    return pd.DataFrame(rows)


def _psi(r: np.ndarray, c: np.ndarray, eps: float = 1e-4) -> float:
    r, c = np.maximum(r, eps), np.maximum(c, eps)
    return float(np.sum((c - r) * np.log(c / r)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    rows = args.rows
    setup, ws = measure("setup: simulate + ingest (cached)", rows, lambda: build_workspace(rows))
    ref, cur = drift.split_windows(ws)
    specs = drift.monitored_columns(ws)
    drift.clear_profiles(ws)  # every run of the benchmark fits the profile afresh
    fresh, rep = measure("drift report, fresh profile (tests+timeline)", rows,
                         lambda: drift.run_report(ws, ref, cur, multivariate_checks=False, performance_checks=False))
    frozen, rep2 = measure("drift report, frozen profile (tests+timeline)", rows,
                           lambda: drift.run_report(ws, ref, cur, multivariate_checks=False, performance_checks=False))
    full, rep3 = measure("full report (+domain clf, PCA, labels)", rows, lambda: drift.run_report(ws, ref, cur))
    load, frames = measure("pandas: load both windows into memory", rows, lambda: load_frames(ws, specs, ref, cur))
    base, table = measure("pandas/scipy: same tests + timeline", rows, lambda: pandas_tests(*frames, specs))
    set_ratio(fresh, base)
    set_ratio(frozen, base)
    fresh.note = f"{len(specs)} columns, {rep.verdict['n_drifted']} flagged"
    frozen.note = f"{rep2.verdict['n_drifted']} flagged; current scan {rep2.timings['current_scan']:.2f} s"
    full.note = f"{rep3.verdict['status']}; domain AUC {rep3.multivariate.get('domain_auc', float('nan')):.3f}"
    flagged_pandas = int(((table.get("ks_p", pd.Series(dtype=float)) < 0.05)
                          | (table.get("chi2_p", pd.Series(dtype=float)) < 0.05)).sum())
    base.note = f"p<0.05 alone would flag {flagged_pandas} of {len(table)} (no effect-size guard)"
    report([setup, fresh, frozen, full, load, base], title=f"drift report, {len(specs)} columns")


if __name__ == "__main__":
    main()
