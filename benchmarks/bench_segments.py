"""Benchmark customer segmentation: customer features in DuckDB (vs pandas groupby) and K-Means, N transactions.

    python benchmarks/bench_segments.py --rows 10000000
"""
from __future__ import annotations

import argparse

import pandas as pd
from _common import BENCH_DATA, measure, report, set_ratio

from fraudlab import segments
from fraudlab.generate import simulate
from fraudlab.ingest import ingest_table
from fraudlab.workspace import Workspace


def pandas_features(tx: pd.DataFrame) -> pd.DataFrame:
    """The plain-pandas way to the same customer features."""
    end = tx["ts"].max() + pd.Timedelta(seconds=1)
    tx = tx.assign(online=(tx["channel"] == "online").astype(float), night=(tx["ts"].dt.hour < 6).astype(float))
    home = tx.groupby("customer_id")["country"].agg(lambda s: s.value_counts().index[0])
    tx = tx.assign(foreign=(tx["country"] != tx["customer_id"].map(home)).astype(float))
    g = tx.groupby("customer_id")
    out = g.agg(frequency=("amount", "size"), monetary=("amount", "sum"), avg_ticket=("amount", "mean"),
                ticket_spread=("amount", "std"), last=("ts", "max"), first=("ts", "min"), night_share=("night", "mean"),
                online_share=("online", "mean"), foreign_share=("foreign", "mean"))
    out["distinct_merchants"] = g["merchant_id"].nunique()
    out["distinct_devices"] = g["device_id"].nunique()
    out["recency_days"] = (end - out.pop("last")).dt.total_seconds() / 86400
    out["tenure_days"] = (end - out.pop("first")).dt.total_seconds() / 86400
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    BENCH_DATA.mkdir(exist_ok=True)
    path = BENCH_DATA / f"segments_{args.rows}.duckdb"
    path.unlink(missing_ok=True)
    sim = simulate(rows=args.rows, seed=5, customers=args.rows // 10)
    ws = Workspace(path)
    transactions = sim.transactions
    ingest_table(ws, transactions, source="bench")
    ours, features = measure("customer features: duckdb", args.rows, lambda: segments.customer_features(ws))
    base, _ = measure("customer features: pandas groupby", args.rows, lambda: pandas_features(transactions))
    ours.note = f"{len(features):,} customers"
    sim = transactions = None  # free the frame before the next stage
    fit, (labels, _) = measure("K-Means (k by silhouette on a sample)", len(features),
                               lambda: segments.fit_segments(features, seed=0))
    fit.note = f"k={int(labels.max()) + 1}"
    full, rep = measure("end to end: features + K-Means + store", args.rows, lambda: segments.segment_customers(ws))
    full.note = f"{rep.customers:,} customers, k={rep.k}"
    report([set_ratio(ours, base), base, fit, full], title=f"segments at {args.rows:,} transactions")
    ws.close()


if __name__ == "__main__":
    main()
