"""Benchmark the model chain: point-in-time features (vs pandas rolling), training, batch scoring, SHAP, single case.

    python benchmarks/bench_model.py --rows 1000000
"""
from __future__ import annotations

import argparse
import shutil
import time

import numpy as np
import pandas as pd
from _common import BENCH_DATA, Stage, measure, report, set_ratio

from fraudlab.features import build_features, customer_velocity
from fraudlab.features_dask import build_features_dask
from fraudlab.generate import simulate
from fraudlab.ingest import ingest_table
from fraudlab.labels import label_maturity_days
from fraudlab.model import metrics_by_group, train_model
from fraudlab.registry import champion, load_booster, register
from fraudlab.scoring import Scorer, explain_top_scores, score_window
from fraudlab.workspace import Workspace

WINDOWS = {"5m": "5min", "1h": "1h", "24h": "24h", "7d": "7D"}
TRAIN_ROWS = 1_000_000  # labelled rows in the training window (train + validation + test)


def pandas_rolling(tx: pd.DataFrame) -> pd.DataFrame:
    """The plain-pandas way: per-customer count and sum over the same four windows, strictly earlier rows."""
    frame = tx[["customer_id", "ts", "amount"]].sort_values(["customer_id", "ts"])
    grouped = frame.groupby("customer_id")
    out = {}
    for name, window in WINDOWS.items():
        rolled = grouped.rolling(window, on="ts", closed="left")["amount"]
        out[f"c_cnt_{name}"] = rolled.count().fillna(0).to_numpy()
        out[f"c_sum_{name}"] = rolled.sum().fillna(0).to_numpy()
    return pd.DataFrame(out)


def _train_from(ws: Workspace, rows: int):
    """Start of a training window holding about `rows` of the matured rows (training is benchmarked at 1M)."""
    end = ws.scalar("SELECT max(ts) FROM transactions") - pd.Timedelta(days=label_maturity_days(ws))
    total = ws.scalar("SELECT count(*) FROM transactions WHERE ts <= $end", {"end": end})
    if total <= rows:
        return None
    return ws.scalar("SELECT quantile_disc(ts, $q) FROM transactions WHERE ts <= $end",
                     {"q": 1 - rows / total, "end": end})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--dask", action=argparse.BooleanOptionalAction, default=True,
                        help="also time the Dask feature path on a local cluster")
    args = parser.parse_args()
    BENCH_DATA.mkdir(exist_ok=True)
    path = BENCH_DATA / f"model_{args.rows}.duckdb"
    for old in (path, path.with_suffix(".duckdb.wal")):
        old.unlink(missing_ok=True)
    shutil.rmtree(BENCH_DATA / f"model_{args.rows}_models", ignore_errors=True)

    sim = simulate(rows=args.rows, seed=1)
    ws = Workspace(path)
    transactions = sim.transactions
    ingest_table(ws, transactions, source="bench")
    stages: list[Stage] = []
    same, _ = measure("velocity windows: duckdb (8 columns)", args.rows, lambda: customer_velocity(ws))
    base, _ = measure("velocity windows: pandas rolling (same 8)", args.rows, lambda: pandas_rolling(transactions))
    full, built = measure("all point-in-time features: duckdb", args.rows, lambda: build_features(ws))
    full.note = f"{len(built.columns)} features incl. distinct-customer and label-aware merchant windows"
    stages += [set_ratio(same, base), base, full]
    truth = sim.truth
    sim = transactions = None  # free the frame before the next stage
    if args.dask:
        dask_stage, _ = measure("all point-in-time features: dask (2 workers)", args.rows,
                                lambda: build_features_dask(ws))
        dask_stage.note = "same SQL per key partition, LocalCluster; result identical (tests/test_features_dask.py)"
        stages.append(dask_stage)

    start = _train_from(ws, TRAIN_ROWS)
    train, result = measure("train XGBoost (time split, early stop)", 0, lambda: train_model(ws, train_from=start))
    train.rows = result.metrics["train_rows"] + result.metrics["valid_rows"] + result.metrics["test_rows"]
    train.rows_per_s = train.rows / train.seconds
    train.note = f"{len(result.features)} features, {result.metrics['best_iteration'] + 1} trees, PR-AUC {result.metrics['pr_auc']:.3f}"
    stages.append(train)
    register(ws, result)
    test = result.test_predictions.merge(truth, on="transaction_id", how="left")
    per_pattern = metrics_by_group(test["label"].to_numpy(), test["score"].to_numpy(),
                                   test["pattern"].fillna("").to_numpy())

    scored_stage, scored = measure("batch score (champion)", args.rows, lambda: score_window(ws, explain_top=0))
    stages.append(scored_stage)
    record = champion(ws)
    booster = load_booster(record)
    ids = ws.arrow("SELECT transaction_id, score FROM scores")
    top = min(10_000, args.rows)
    explain_stage, _ = measure("exact TreeSHAP + reasons, top 10k", top,
                               lambda: explain_top_scores(ws, record, booster, ids, top))
    stages.append(explain_stage)

    scorer = Scorer(ws)
    rng = np.random.default_rng(0)
    tids = ws.df("SELECT transaction_id FROM scores ORDER BY score DESC LIMIT 5000")["transaction_id"].to_numpy()
    picks = rng.choice(tids, size=min(args.cases, len(tids)), replace=False)
    scorer.score_case(picks[0])
    latencies = []
    for tid in picks:
        began = time.perf_counter()
        case = scorer.score_case(tid)
        latencies.append(1000 * (time.perf_counter() - began))
    p50, p99 = np.percentile(latencies, [50, 99])
    stages.append(Stage("single case score + exact explanation", len(picks), sum(latencies) / 1000, 0.0,
                        len(picks) / (sum(latencies) / 1000), note=f"p50 {p50:.1f} ms, p99 {p99:.1f} ms ({case.scorer})"))
    report(stages, title=f"model chain at {args.rows:,} rows")
    print("\nTest-period PR-AUC per injected fraud pattern (each pattern's frauds against all legitimate rows):")
    print(per_pattern.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    ws.close()


if __name__ == "__main__":
    main()
