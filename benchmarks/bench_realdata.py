"""The real-data path on data shaped like the public handbook dataset (customers and terminals only, TX_FRAUD,
time-index columns, a label-derived column): ingest with no mapping -> features -> train to a cut-off -> score the
week after the label delay, and the literature's evaluation protocol, against a plain DuckDB + XGBoost script.

    python benchmarks/bench_realdata.py                 # 1.79M rows, 183 days (the handbook's size)
    python benchmarks/bench_realdata.py --rows 200000   # fewer customers, same period
"""
from __future__ import annotations

import argparse
import shutil

import handbook_baseline
from _common import BENCH_DATA, measure, report

from fraudlab import pipeline
from fraudlab.auth.actors import Actor
from fraudlab.data_roots import ANYWHERE
from fraudlab.drift import Window, run_report
from fraudlab.evaluation import default_protocol, evaluate_protocol
from fraudlab.features import build_features
from fraudlab.handbook_sim import simulate_handbook, write_handbook
from fraudlab.ingest import ingest_path
from fraudlab.scoring import score_window
from fraudlab.workspace import Workspace

ROWS_PER_CUSTOMER = 358  # the handbook's 5,000 customers make 1.79M rows over 183 days


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_790_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    customers = max(200, args.rows // ROWS_PER_CUSTOMER)
    BENCH_DATA.mkdir(exist_ok=True)
    csv = BENCH_DATA / f"handbook_{customers}_{args.seed}.csv"
    if not csv.exists():
        write_handbook(simulate_handbook(n_customers=customers, n_terminals=2 * customers, seed=args.seed), csv)
    path = BENCH_DATA / f"realdata_{customers}.duckdb"
    for old in (path, path.with_suffix(".duckdb.wal")):
        old.unlink(missing_ok=True)
    shutil.rmtree(BENCH_DATA / f"realdata_{customers}_models", ignore_errors=True)
    ws = Workspace(path)
    stages = []
    load, loaded = measure("ingest CSV, mapping detected", 0,
                           lambda: ingest_path(ws, csv, roots=ANYWHERE, keep_columns="all"))
    load.rows, load.note = loaded.rows_loaded, f"label column found: {loaded.mapping['columns'].get('is_fraud')}"
    rows = loaded.rows_loaded
    feat, built = measure("features (time indexes left out)", rows, lambda: build_features(ws))
    feat.note = f"{len(built.columns)} features; left out: {', '.join(sorted(built.excluded))}"
    protocol = default_protocol(ws, "2018-08-01", 7.0, "2018-08-08", "2018-08-15", known_since="2018-07-25")
    train, trained = measure("train to 2018-08-01 (select + refit)", rows,
                             lambda: pipeline.retrain(ws, train_to=protocol.train_to, who=Actor("bench", "data_scientist")))
    score, _ = measure("score the test week", rows, lambda: score_window(ws, protocol.test_from, protocol.test_to))
    evaluation, run = measure("evaluate (literature protocol)", rows,
                              lambda: evaluate_protocol(ws, protocol, trained.result))
    evaluation.note = (f"PR-AUC {run.pr_auc:.3f}, ROC-AUC {run.roc_auc:.3f}, card precision@100 "
                       f"{run.card_precision:.3f} on {run.rows:,} test rows")
    drift, rep = measure("drift June vs July", rows, lambda: run_report(
        ws, Window.dates("2018-06-01", "2018-07-01"), Window.dates("2018-07-01", "2018-08-01")))
    drift.note = rep.verdict["status"]
    base, result = measure("plain DuckDB + XGBoost script (same protocol)", rows, lambda: handbook_baseline.run(
        customers, 2 * customers, 183, args.seed, handbook_baseline.HANDBOOK_TRAIN_START))
    base.note = f"PR-AUC {result['pr_auc']:.3f}, ROC-AUC {result['roc_auc']:.3f}, card precision@100 {result['cp100']:.3f}"
    stages += [load, feat, train, score, evaluation, drift, base]
    report(stages, "real-data path on handbook-shaped data")


if __name__ == "__main__":
    main()
